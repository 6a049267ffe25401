"""Names where a person reads: operation-log actions, organisation paths, results and verbs, in Chinese; the code
stays in the cell's tooltip (`title=`). Organisation names are looked up once per page (`OrgNames`)."""

from __future__ import annotations

from core.resources import Resources
from orgs import service
from orgs.permissions import CATALOGUE

# Operation-log actions (the `action` of each console and API operation, admin/*.py and the domains' own entries).
ACTIONS: dict[str, str] = {
    "admin.sign_in": "登录",
    "admin.sign_in_qr": "扫码登录",
    "admin.sign_out": "退出登录",
    "admin.bind_qr": "绑定苏证通账号",
    "admin.totp_start": "开启动态验证码",
    "admin.totp_confirm": "确认动态验证码",
    "admin.totp_enabled": "已开启动态验证码",
    "orgs.org.apply": "申请注册机构",
    "orgs.org.review": "审核机构注册",
    "orgs.org.approve": "通过机构注册",
    "orgs.org.reject": "驳回机构注册",
    "orgs.admin.register": "注册管理员",
    "orgs.admin.create": "新建管理员",
    "orgs.admin.review": "审核管理员",
    "orgs.admin.approve": "通过管理员注册",
    "orgs.admin.reject": "驳回管理员注册",
    "orgs.admin.disable": "停用管理员",
    "orgs.admin.assign": "分配角色",
    "orgs.role.create": "新建角色",
    "orgs.doc.download": "下载证明材料",
    "catalog.app.apply": "申请接入应用",
    "catalog.app.submit": "提交应用变更",
    "catalog.app.review": "审核应用接入",
    "catalog.app.approved": "通过应用接入",
    "catalog.app.rejected": "驳回应用接入",
    "catalog.app.listing": "上架/下架应用",
    "catalog.app.list": "上架应用",
    "catalog.app.visibility": "设置应用可见范围",
    "catalog.layout.update": "修改首页布局",
    "masking.edit": "修改脱敏规则",
    "monitor.alert.create": "新建告警规则",
    "monitor.alert.delete": "删除告警规则",
    "eseal.app.create": "新建印章应用",
    "eseal.ca.trust": "信任根证书",
    "eseal.cert.apply": "申请数字证书",
    "eseal.cert.change": "变更数字证书",
    "eseal.cert.review": "审核数字证书",
    "eseal.seal.apply": "申请电子印章",
    "eseal.seal.change": "变更电子印章",
    "eseal.seal.review": "审核电子印章",
    "eseal.seal.grant": "授权电子印章",
    "eseal.seal.ungrant": "取消印章授权",
    "unmasked_read": "查看未脱敏数据",
}
# Results, verbs and directions that the logs and the seal log write in English.
WORDS: dict[str, str] = {
    "ok": "成功",
    "fail": "失败",
    "valid": "有效",
    "invalid": "无效",
    "verify": "验证",
    "sign": "签章",
    "inbound": "接入",
    "outbound": "调出",
    "apply": "申请",
    "approve": "通过",
    "reject": "驳回",
    "make": "制作",
    "register": "备案",
    "publish": "发布",
    "suspend": "暂停",
    "resume": "恢复",
    "revoke": "撤销",
    "destroy": "销毁",
    "renew": "续期",
    "issue": "签发",
    "grant": "授权",
    "ungrant": "取消授权",
    "bind": "绑定证书",
}


def action_name(code: str) -> str:
    """The Chinese name of an action code (a permission's name when it is one; the code itself otherwise)."""
    if code in ACTIONS:
        return ACTIONS[code]
    if code in CATALOGUE:
        return CATALOGUE[code][0]
    head, _, verb = code.rpartition(".")
    if head and verb in WORDS:
        return f"{action_name(head) if head in ACTIONS or head in CATALOGUE else head}：{WORDS[verb]}"
    return code


def word(code: str) -> str:
    return WORDS.get(code, code)


class OrgNames:
    """Organisation names by code or materialised path (`320000.320500.320505` → its last organisation's name),
    looked up once each for one page."""

    def __init__(self, res: Resources) -> None:
        self.res = res
        self.known: dict[str, str] = {}

    async def name(self, path: str) -> str:
        code = path.rsplit(".", 1)[-1] if path else ""
        if not code:
            return ""
        if code not in self.known:
            org = await service.org_by_code(self.res, code)
            self.known[code] = org.name if org is not None else code
        return self.known[code]

    async def names(self, paths: list[str]) -> dict[str, str]:
        return {p: await self.name(p) for p in dict.fromkeys(paths)}

    async def chain(self, path: str) -> str:
        """`江苏省公安厅 › 苏州市公安局 › …` of a materialised path."""
        return " › ".join([await self.name(code) for code in path.split(".") if code])

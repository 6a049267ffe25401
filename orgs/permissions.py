"""The catalogue of permissions: one per console menu and one per button (action) inside it, and the built-in
roles. Other domains' permissions (catalog, eseal) are listed here too so custom roles can grant them."""

from __future__ import annotations

# code -> (name, menu, kind)
CATALOGUE: dict[str, tuple[str, str, str]] = {
    "dashboard.view": ("首页概览", "首页", "menu"),
    "orgs.org.list": ("组织机构", "组织机构", "menu"),
    "orgs.org.apply": ("申请注册下级机构", "组织机构", "button"),
    "orgs.org.review": ("审核机构注册", "组织机构", "button"),
    "orgs.doc.download": ("下载机构证明材料", "组织机构", "button"),
    "orgs.admin.list": ("管理员账号", "账号管理", "menu"),
    "orgs.admin.create": ("新建管理员", "账号管理", "button"),
    "orgs.admin.review": ("审核管理员注册", "账号管理", "button"),
    "orgs.admin.disable": ("停用管理员", "账号管理", "button"),
    "orgs.admin.assign": ("分配角色", "账号管理", "button"),
    "orgs.role.list": ("角色权限", "角色权限", "menu"),
    "orgs.role.edit": ("新建/修改角色", "角色权限", "button"),
    "logs.read": ("日志查询", "日志管理", "menu"),
    "logs.export": ("导出日志", "日志管理", "button"),
    "logs.report": ("日志报表", "日志管理", "button"),
    "monitor.read": ("运行监控", "运行监控", "menu"),
    "monitor.alert.edit": ("告警规则", "运行监控", "button"),
    "masking.read": ("脱敏管理", "脱敏管理", "menu"),
    "masking.edit": ("修改脱敏规则", "脱敏管理", "button"),
    "stats.read": ("统计分析", "统计分析", "menu"),
    "catalog.app.list": ("应用管理", "应用管理", "menu"),
    "catalog.app.apply": ("申请接入应用", "应用管理", "button"),
    "catalog.app.review": ("审核应用接入", "应用管理", "button"),
    "catalog.app.delist": ("上架/下架应用", "应用管理", "button"),
    "catalog.layout.edit": ("首页布局", "应用管理", "button"),
    "eseal.read": ("电子印章", "电子印章", "menu"),
    "eseal.seal.apply": ("申请电子印章", "电子印章", "button"),
    "eseal.seal.review": ("审核电子印章", "电子印章", "button"),
    "eseal.seal.make": ("制作、备案、发布印章", "电子印章", "button"),
    "eseal.seal.manage": ("暂停、撤销、销毁、授权印章", "电子印章", "button"),
    "eseal.cert.manage": ("签发、冻结、吊销、续期证书", "电子印章", "button"),
    "eseal.log.export": ("导出印章日志", "电子印章", "button"),
    "ratings.read": ("好差评", "好差评", "menu"),
    "ratings.handle": ("差评核查、整改", "好差评", "button"),
    "ratings.review": ("差评申诉审核", "好差评", "button"),
    "ratings.visit": ("差评回访", "好差评", "button"),
}

ALL = frozenset(CATALOGUE)

# The built-in roles: platform (everything, every organisation), system (runs the platform for its subtree),
# organisation administrator (its own organisation's accounts, apps and logs).
BUILTIN: dict[str, tuple[str, str, int, frozenset[str]]] = {
    "platform": ("平台管理员", "all", 3, ALL | {"*"}),
    "system": ("系统管理员", "subtree", 2, ALL - {"masking.edit"}),
    "org_admin": (
        "机构管理员",
        "subtree",
        1,
        frozenset(
            {
                "dashboard.view",
                "orgs.org.list",
                "orgs.org.apply",
                "orgs.org.review",
                "orgs.doc.download",
                "orgs.admin.list",
                "orgs.admin.create",
                "orgs.admin.review",
                "orgs.admin.assign",
                "orgs.role.list",
                "orgs.role.edit",
                "logs.read",
                "stats.read",
                "catalog.app.list",
                "catalog.app.apply",
            }
        ),
    ),
}

SCOPE_RANK = {"own": 0, "subtree": 1, "all": 2}

"""The home screen's reminders from affairs: a held appointment tomorrow and a case waiting for materials show
for their person on GET /bff/v1/home, and for no one else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from tests.identity_helpers import pick_citizen
from tests.test_affairs import Person, command, fill, ref_of, submit

SHANGHAI = ZoneInfo("Asia/Shanghai")


def reminders(http: httpx.Client, p: Person) -> Any:
    r = http.get("/bff/v1/home", headers={**p.headers, "X-SZT-Client": "ios/3.2.0"})
    assert r.status_code == 200, r.text
    return r.json()["personal"]["reminders"]


def test_tomorrows_appointment_and_supplement_are_reminders(http: httpx.Client, sim_url: str) -> None:
    p = Person(http, sim_url, pick_citizen(sim_url))
    before = reminders(http, p)
    assert before["sources"] == {"documents": before["sources"]["documents"], "appointments": "ok", "supplements": "ok"}
    assert not [i for i in before["items"] if i["kind"] in ("appointment", "supplement")]

    office = http.get("/bff/v1/affairs/apps/app-02/offices", params={"region": "320505"}).json()["items"][0]
    slots = http.get("/bff/v1/affairs/apps/app-02/slots", params={"office_id": office["id"]}, headers=p.headers)
    tomorrow = datetime.now(UTC).astimezone(SHANGHAI).date() + timedelta(days=1)
    slot = next(
        s
        for s in slots.json()["items"]
        if datetime.fromisoformat(s["starts_at"]).astimezone(SHANGHAI).date() == tomorrow
    )
    later = next(
        s
        for s in slots.json()["items"]
        if datetime.fromisoformat(s["starts_at"]).astimezone(SHANGHAI).date() > tomorrow
    )
    form = {"name": p.citizen.name, "phone": p.citizen.phone}
    booked = []
    for s in (slot, later):
        r = http.post(
            "/bff/v1/affairs/bookings", json={"code": "app-02", "slot_id": s["id"], "form": form}, headers=p.headers
        )
        assert r.status_code == 201, r.text
        booked.append(r.json()["id"])

    case = submit(http, p, "app-11", fill(http, p, "app-11")).json()
    ref = ref_of(sim_url, case["case_no"])
    command(sim_url, ref, "pre_review")
    command(sim_url, ref, "supplement_requested", materials=["本人近期白底证件照"])
    other = submit(http, p, "app-19", fill(http, p, "app-19")).json()  # submitted only: no reminder

    got = reminders(http, p)
    assert got["sources"]["appointments"] == "ok" and got["sources"]["supplements"] == "ok"
    items = got["items"]
    appts = [i for i in items if i["kind"] == "appointment"]
    assert [a["link"] for a in appts] == [f"szt://affairs/bookings/{booked[0]}"]  # tomorrow's only, not the later
    assert office["name"] in appts[0]["title"] and appts[0]["due"]
    assert datetime.fromisoformat(appts[0]["due"]) == datetime.fromisoformat(slot["starts_at"])
    sups = [i for i in items if i["kind"] == "supplement"]
    assert [s["link"] for s in sups] == [f"szt://affairs/cases/{case['id']}"]
    assert case["case_no"] in sups[0]["title"] and "本人近期白底证件照" in sups[0]["title"]
    assert other["case_no"] not in str(items)

    # Someone else sees none of it; a cancelled booking drops out.
    stranger = Person(http, sim_url, pick_citizen(sim_url))
    assert not [i for i in reminders(http, stranger)["items"] if i["kind"] in ("appointment", "supplement")]
    assert http.post(f"/bff/v1/affairs/bookings/{booked[0]}/cancellation", headers=p.headers).status_code == 200
    assert not [i for i in reminders(http, p)["items"] if i["kind"] == "appointment"]

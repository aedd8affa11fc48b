"""The 届出 a counter terminal sends, built in one place for every client that sends them (the replay, the
benchmark, Locust, the tests): the items a clerk types, the day of the 届出 the office's today."""
from __future__ import annotations

from nodes.clock import office_today
from protos import kizon_pb2, records_pb2

OUTSIDE = "131016"  # 東京都千代田区: where people from outside the network come from and go to
OUTSIDE_ADDRESS = "東京都千代田区千代田1番1号"


DOCUMENT = "個人番号カード"  # the 本人確認書類 a testbed terminal's clerk records having seen, unless told otherwise


def _today(today: str | None) -> str:
    return today or office_today().isoformat()


def notifier(kind: int = records_pb2.REQUESTER_SELF, name: str = "窓口 届出人", code: str = "",
             document: str = DOCUMENT, **more) -> records_pb2.Requester:
    """The 届出人 or 請求者 as the clerk records them after the 本人確認."""
    return records_pb2.Requester(kind=kind, name=name, resident_code=code, identity_document=document, **more)


# 届出 the person cannot make themself: someone of the household makes them (as the clerk records it).
_BY_THE_HOUSEHOLD = (kizon_pb2.BirthRequest, kizon_pb2.DeathRequest)


def with_notifier(request):
    """A 届出 or certificate request as a testbed terminal sends it: when the caller named no 届出人/請求者, the
    clerk's default entry (本人, or 同一世帯の者 for a 出生 or 死亡; for a certificate, 本人 of the person asked
    about). The node checks whatever is sent; this only saves every test from typing the counter's entry."""
    if not hasattr(request, "DESCRIPTOR"):  # a stream of requests (a bulk load) is sent as it is
        return request
    field = ("notifier" if "notifier" in request.DESCRIPTOR.fields_by_name else
             "requester" if "requester" in request.DESCRIPTOR.fields_by_name else "")
    if not field or request.HasField(field) or getattr(request, "card_number", ""):
        return request
    if field == "requester":
        request.requester.CopyFrom(notifier(code=request.resident_code))
    elif isinstance(request, _BY_THE_HOUSEHOLD):
        request.notifier.CopyFrom(notifier(records_pb2.REQUESTER_HOUSEHOLD))
    else:
        request.notifier.CopyFrom(notifier())
    return request


def birth(household: str, *, sex: str = "2", name: tuple[str, str] = ("新生 児", "シンセイ ジ"),
          today: str | None = None) -> kizon_pb2.BirthRequest:
    """出生届: a child born today into a household."""
    day = _today(today)
    return kizon_pb2.BirthRequest(household_number=household, notification_date=day, child=records_pb2.ResidentRecord(
        name_kanji=name[0], name_kana=name[1], birth_date=day, sex=sex),
        notifier=notifier(records_pb2.REQUESTER_HOUSEHOLD, name="出生 届出人"))


def move_within(code: str, address: records_pb2.Address, *, whole_household: bool = False,
                today: str | None = None) -> kizon_pb2.MoveWithinRequest:
    """転居届: a move to another address of the same municipality, today."""
    day = _today(today)
    return kizon_pb2.MoveWithinRequest(resident_code=code, address=address, move_date=day, notification_date=day,
                                       whole_household=whole_household, notifier=notifier(code=code))


def move_in_from_abroad(person: records_pb2.ResidentRecord, address: records_pb2.Address, *, household: str = "",
                        today: str | None = None) -> kizon_pb2.MoveInRequest:
    """転入届 of someone coming from abroad (国外転入): the person as typed at the counter, today."""
    day = _today(today)
    return kizon_pb2.MoveInRequest(person=person, address=address, move_in_date=day, notification_date=day,
                                   from_abroad=True, notifier=notifier(name=person.name_kanji or "窓口 届出人"),
                                   **({"household_number": household} if household else {}))


def death(code: str, *, today: str | None = None) -> kizon_pb2.DeathRequest:
    """死亡届: died today."""
    day = _today(today)
    return kizon_pb2.DeathRequest(resident_code=code, death_date=day, notification_date=day,
                                  notifier=notifier(records_pb2.REQUESTER_HOUSEHOLD, name="死亡 届出人"))


def move_out(code: str, planned: str, *, destination: str = OUTSIDE, destination_address: str = OUTSIDE_ADDRESS,
             special: bool = False, today: str | None = None) -> kizon_pb2.MoveOutRequest:
    """転出届: planned for a day, to a municipality (outside the network by default); 特例転出 with special."""
    return kizon_pb2.MoveOutRequest(resident_code=code, planned_date=planned, notification_date=_today(today),
                                    destination_address=destination_address, destination_municipality_code=destination,
                                    special=special, notifier=notifier(code=code))


def emigration(code: str, planned: str, *, country: str = "アメリカ合衆国", today: str | None = None) -> kizon_pb2.EmigrationRequest:
    """国外転出届: planned for a day, to a country."""
    return kizon_pb2.EmigrationRequest(resident_code=code, destination_country=country, planned_date=planned,
                                       notification_date=_today(today), notifier=notifier(code=code))


def official_removal(code: str, survey: str, *, today: str | None = None) -> kizon_pb2.OfficialRemovalRequest:
    """職権消除 after a 実態調査 found the person gone (today)."""
    return kizon_pb2.OfficialRemovalRequest(resident_code=code, reason="実態調査の結果、居住の実態なし",
                                            survey_reference=survey, found_date=_today(today))


def official_entry(person: records_pb2.ResidentRecord, address: records_pb2.Address, survey: str, *,
                   today: str | None = None) -> kizon_pb2.OfficialEntryRequest:
    """職権記載 of a person a 実態調査 found living here with no 住民票 (since today)."""
    return kizon_pb2.OfficialEntryRequest(person=person, address=address, resident_since=_today(today),
                                          reason="実態調査の結果、居住を確認", survey_reference=survey)

"""The 届出 a counter terminal sends, built in one place for every client that sends them (the replay, the
benchmark, Locust, the tests): the items a clerk types, the day of the 届出 the office's today."""
from __future__ import annotations

from nodes.clock import office_today
from protos import kizon_pb2, records_pb2

OUTSIDE = "131016"  # 東京都千代田区: where people from outside the network come from and go to
OUTSIDE_ADDRESS = "東京都千代田区千代田1番1号"


def _today(today: str | None) -> str:
    return today or office_today().isoformat()


def birth(household: str, *, sex: str = "2", name: tuple[str, str] = ("新生 児", "シンセイ ジ"),
          today: str | None = None) -> kizon_pb2.BirthRequest:
    """出生届: a child born today into a household."""
    day = _today(today)
    return kizon_pb2.BirthRequest(household_number=household, notification_date=day, child=records_pb2.ResidentRecord(
        name_kanji=name[0], name_kana=name[1], birth_date=day, sex=sex))


def move_within(code: str, address: records_pb2.Address, *, whole_household: bool = False,
                today: str | None = None) -> kizon_pb2.MoveWithinRequest:
    """転居届: a move to another address of the same municipality, today."""
    day = _today(today)
    return kizon_pb2.MoveWithinRequest(resident_code=code, address=address, move_date=day, notification_date=day,
                                       whole_household=whole_household)


def move_in_from_abroad(person: records_pb2.ResidentRecord, address: records_pb2.Address, *, household: str = "",
                        today: str | None = None) -> kizon_pb2.MoveInRequest:
    """転入届 of someone coming from abroad (国外転入): the person as typed at the counter, today."""
    day = _today(today)
    return kizon_pb2.MoveInRequest(person=person, address=address, move_in_date=day, notification_date=day,
                                   from_abroad=True, **({"household_number": household} if household else {}))


def death(code: str, *, today: str | None = None) -> kizon_pb2.DeathRequest:
    """死亡届: died today."""
    day = _today(today)
    return kizon_pb2.DeathRequest(resident_code=code, death_date=day, notification_date=day)


def move_out(code: str, planned: str, *, destination: str = OUTSIDE, destination_address: str = OUTSIDE_ADDRESS,
             special: bool = False, today: str | None = None) -> kizon_pb2.MoveOutRequest:
    """転出届: planned for a day, to a municipality (outside the network by default); 特例転出 with special."""
    return kizon_pb2.MoveOutRequest(resident_code=code, planned_date=planned, notification_date=_today(today),
                                    destination_address=destination_address, destination_municipality_code=destination,
                                    special=special)

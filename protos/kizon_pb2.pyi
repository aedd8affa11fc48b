from protos import card_pb2 as _card_pb2
from protos import common_pb2 as _common_pb2
from protos import identity_pb2 as _identity_pb2
from protos import records_pb2 as _records_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CertificateKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CERTIFICATE_KIND_UNSPECIFIED: _ClassVar[CertificateKind]
    RESIDENT_COPY: _ClassVar[CertificateKind]
    HOUSEHOLD_COPY: _ClassVar[CertificateKind]
    STATED_ITEMS: _ClassVar[CertificateKind]
    MOVE_OUT: _ClassVar[CertificateKind]
    REMOVED_COPY: _ClassVar[CertificateKind]
CERTIFICATE_KIND_UNSPECIFIED: CertificateKind
RESIDENT_COPY: CertificateKind
HOUSEHOLD_COPY: CertificateKind
STATED_ITEMS: CertificateKind
MOVE_OUT: CertificateKind
REMOVED_COPY: CertificateKind

class LoginRequest(_message.Message):
    __slots__ = ("operator_id", "credential")
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    operator_id: str
    credential: str
    def __init__(self, operator_id: _Optional[str] = ..., credential: _Optional[str] = ...) -> None: ...

class Session(_message.Message):
    __slots__ = ("token", "operator_id", "roles", "expires_at")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    token: str
    operator_id: str
    roles: _containers.RepeatedScalarFieldContainer[str]
    expires_at: str
    def __init__(self, token: _Optional[str] = ..., operator_id: _Optional[str] = ..., roles: _Optional[_Iterable[str]] = ..., expires_at: _Optional[str] = ...) -> None: ...

class OperatorEntry(_message.Message):
    __slots__ = ("operator_id", "roles", "contractor", "subcontractor", "permission")
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    CONTRACTOR_FIELD_NUMBER: _ClassVar[int]
    SUBCONTRACTOR_FIELD_NUMBER: _ClassVar[int]
    PERMISSION_FIELD_NUMBER: _ClassVar[int]
    operator_id: str
    roles: _containers.RepeatedScalarFieldContainer[str]
    contractor: str
    subcontractor: str
    permission: str
    def __init__(self, operator_id: _Optional[str] = ..., roles: _Optional[_Iterable[str]] = ..., contractor: _Optional[str] = ..., subcontractor: _Optional[str] = ..., permission: _Optional[str] = ...) -> None: ...

class OperatorChange(_message.Message):
    __slots__ = ("entry", "reason")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    entry: OperatorEntry
    reason: str
    def __init__(self, entry: _Optional[_Union[OperatorEntry, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class RosterChange(_message.Message):
    __slots__ = ("roster_version", "delivered_to", "pending", "credential")
    ROSTER_VERSION_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_TO_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    roster_version: int
    delivered_to: _containers.RepeatedScalarFieldContainer[str]
    pending: _containers.RepeatedScalarFieldContainer[str]
    credential: str
    def __init__(self, roster_version: _Optional[int] = ..., delivered_to: _Optional[_Iterable[str]] = ..., pending: _Optional[_Iterable[str]] = ..., credential: _Optional[str] = ...) -> None: ...

class RosterRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class OperatorRoster(_message.Message):
    __slots__ = ("version", "operators")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    OPERATORS_FIELD_NUMBER: _ClassVar[int]
    version: int
    operators: _containers.RepeatedCompositeFieldContainer[OperatorEntry]
    def __init__(self, version: _Optional[int] = ..., operators: _Optional[_Iterable[_Union[OperatorEntry, _Mapping]]] = ...) -> None: ...

class SubcontractPermission(_message.Message):
    __slots__ = ("contractor", "subcontractor", "reference", "reason")
    CONTRACTOR_FIELD_NUMBER: _ClassVar[int]
    SUBCONTRACTOR_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    contractor: str
    subcontractor: str
    reference: str
    reason: str
    def __init__(self, contractor: _Optional[str] = ..., subcontractor: _Optional[str] = ..., reference: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class SignedRoster(_message.Message):
    __slots__ = ("municipality", "version", "token")
    MUNICIPALITY_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    municipality: str
    version: int
    token: str
    def __init__(self, municipality: _Optional[str] = ..., version: _Optional[int] = ..., token: _Optional[str] = ...) -> None: ...

class RosterAck(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: int
    def __init__(self, version: _Optional[int] = ...) -> None: ...

class BulkApprovalRequest(_message.Message):
    __slots__ = ("purpose", "max_records", "requester_operator_id", "terminal_id", "spent_at")
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    MAX_RECORDS_FIELD_NUMBER: _ClassVar[int]
    REQUESTER_OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_ID_FIELD_NUMBER: _ClassVar[int]
    SPENT_AT_FIELD_NUMBER: _ClassVar[int]
    purpose: str
    max_records: int
    requester_operator_id: str
    terminal_id: str
    spent_at: str
    def __init__(self, purpose: _Optional[str] = ..., max_records: _Optional[int] = ..., requester_operator_id: _Optional[str] = ..., terminal_id: _Optional[str] = ..., spent_at: _Optional[str] = ...) -> None: ...

class BulkApproval(_message.Message):
    __slots__ = ("token", "expires_at", "approval_id")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_ID_FIELD_NUMBER: _ClassVar[int]
    token: str
    expires_at: str
    approval_id: str
    def __init__(self, token: _Optional[str] = ..., expires_at: _Optional[str] = ..., approval_id: _Optional[str] = ...) -> None: ...

class ChangeReply(_message.Message):
    __slots__ = ("records", "update_sequence", "request_control_number")
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    UPDATE_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_CONTROL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[_records_pb2.ResidentRecord]
    update_sequence: int
    request_control_number: str
    def __init__(self, records: _Optional[_Iterable[_Union[_records_pb2.ResidentRecord, _Mapping]]] = ..., update_sequence: _Optional[int] = ..., request_control_number: _Optional[str] = ...) -> None: ...

class BirthRequest(_message.Message):
    __slots__ = ("household_number", "child", "notification_date", "notifier")
    HOUSEHOLD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    CHILD_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_DATE_FIELD_NUMBER: _ClassVar[int]
    NOTIFIER_FIELD_NUMBER: _ClassVar[int]
    household_number: str
    child: _records_pb2.ResidentRecord
    notification_date: str
    notifier: _records_pb2.Requester
    def __init__(self, household_number: _Optional[str] = ..., child: _Optional[_Union[_records_pb2.ResidentRecord, _Mapping]] = ..., notification_date: _Optional[str] = ..., notifier: _Optional[_Union[_records_pb2.Requester, _Mapping]] = ...) -> None: ...

class MoveInRequest(_message.Message):
    __slots__ = ("person", "address", "household_number", "move_in_date", "notification_date", "special", "certificate", "from_abroad", "notifier")
    PERSON_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    HOUSEHOLD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    MOVE_IN_DATE_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_DATE_FIELD_NUMBER: _ClassVar[int]
    SPECIAL_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    FROM_ABROAD_FIELD_NUMBER: _ClassVar[int]
    NOTIFIER_FIELD_NUMBER: _ClassVar[int]
    person: _records_pb2.ResidentRecord
    address: _records_pb2.Address
    household_number: str
    move_in_date: str
    notification_date: str
    special: bool
    certificate: _identity_pb2.MoveOutCertificate
    from_abroad: bool
    notifier: _records_pb2.Requester
    def __init__(self, person: _Optional[_Union[_records_pb2.ResidentRecord, _Mapping]] = ..., address: _Optional[_Union[_records_pb2.Address, _Mapping]] = ..., household_number: _Optional[str] = ..., move_in_date: _Optional[str] = ..., notification_date: _Optional[str] = ..., special: _Optional[bool] = ..., certificate: _Optional[_Union[_identity_pb2.MoveOutCertificate, _Mapping]] = ..., from_abroad: _Optional[bool] = ..., notifier: _Optional[_Union[_records_pb2.Requester, _Mapping]] = ...) -> None: ...

class MoveWithinRequest(_message.Message):
    __slots__ = ("resident_code", "address", "move_date", "notification_date", "whole_household", "notifier")
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    MOVE_DATE_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_DATE_FIELD_NUMBER: _ClassVar[int]
    WHOLE_HOUSEHOLD_FIELD_NUMBER: _ClassVar[int]
    NOTIFIER_FIELD_NUMBER: _ClassVar[int]
    resident_code: str
    address: _records_pb2.Address
    move_date: str
    notification_date: str
    whole_household: bool
    notifier: _records_pb2.Requester
    def __init__(self, resident_code: _Optional[str] = ..., address: _Optional[_Union[_records_pb2.Address, _Mapping]] = ..., move_date: _Optional[str] = ..., notification_date: _Optional[str] = ..., whole_household: _Optional[bool] = ..., notifier: _Optional[_Union[_records_pb2.Requester, _Mapping]] = ...) -> None: ...

class MoveOutRequest(_message.Message):
    __slots__ = ("resident_code", "destination_address", "destination_municipality_code", "planned_date", "notification_date", "special", "notifier")
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_MUNICIPALITY_CODE_FIELD_NUMBER: _ClassVar[int]
    PLANNED_DATE_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_DATE_FIELD_NUMBER: _ClassVar[int]
    SPECIAL_FIELD_NUMBER: _ClassVar[int]
    NOTIFIER_FIELD_NUMBER: _ClassVar[int]
    resident_code: str
    destination_address: str
    destination_municipality_code: str
    planned_date: str
    notification_date: str
    special: bool
    notifier: _records_pb2.Requester
    def __init__(self, resident_code: _Optional[str] = ..., destination_address: _Optional[str] = ..., destination_municipality_code: _Optional[str] = ..., planned_date: _Optional[str] = ..., notification_date: _Optional[str] = ..., special: _Optional[bool] = ..., notifier: _Optional[_Union[_records_pb2.Requester, _Mapping]] = ...) -> None: ...

class MoveOutReply(_message.Message):
    __slots__ = ("change", "certificate")
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    change: ChangeReply
    certificate: _identity_pb2.MoveOutCertificate
    def __init__(self, change: _Optional[_Union[ChangeReply, _Mapping]] = ..., certificate: _Optional[_Union[_identity_pb2.MoveOutCertificate, _Mapping]] = ...) -> None: ...

class DeathRequest(_message.Message):
    __slots__ = ("resident_code", "death_date", "notification_date", "notifier")
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    DEATH_DATE_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_DATE_FIELD_NUMBER: _ClassVar[int]
    NOTIFIER_FIELD_NUMBER: _ClassVar[int]
    resident_code: str
    death_date: str
    notification_date: str
    notifier: _records_pb2.Requester
    def __init__(self, resident_code: _Optional[str] = ..., death_date: _Optional[str] = ..., notification_date: _Optional[str] = ..., notifier: _Optional[_Union[_records_pb2.Requester, _Mapping]] = ...) -> None: ...

class OfficialEntryRequest(_message.Message):
    __slots__ = ("person", "address", "household_number", "resident_since", "reason", "survey_reference")
    PERSON_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    HOUSEHOLD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    RESIDENT_SINCE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SURVEY_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    person: _records_pb2.ResidentRecord
    address: _records_pb2.Address
    household_number: str
    resident_since: str
    reason: str
    survey_reference: str
    def __init__(self, person: _Optional[_Union[_records_pb2.ResidentRecord, _Mapping]] = ..., address: _Optional[_Union[_records_pb2.Address, _Mapping]] = ..., household_number: _Optional[str] = ..., resident_since: _Optional[str] = ..., reason: _Optional[str] = ..., survey_reference: _Optional[str] = ...) -> None: ...

class OfficialRemovalRequest(_message.Message):
    __slots__ = ("resident_code", "reason", "survey_reference", "found_date")
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SURVEY_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    FOUND_DATE_FIELD_NUMBER: _ClassVar[int]
    resident_code: str
    reason: str
    survey_reference: str
    found_date: str
    def __init__(self, resident_code: _Optional[str] = ..., reason: _Optional[str] = ..., survey_reference: _Optional[str] = ..., found_date: _Optional[str] = ...) -> None: ...

class EmigrationRequest(_message.Message):
    __slots__ = ("resident_code", "destination_country", "planned_date", "notification_date", "notifier")
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_COUNTRY_FIELD_NUMBER: _ClassVar[int]
    PLANNED_DATE_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_DATE_FIELD_NUMBER: _ClassVar[int]
    NOTIFIER_FIELD_NUMBER: _ClassVar[int]
    resident_code: str
    destination_country: str
    planned_date: str
    notification_date: str
    notifier: _records_pb2.Requester
    def __init__(self, resident_code: _Optional[str] = ..., destination_country: _Optional[str] = ..., planned_date: _Optional[str] = ..., notification_date: _Optional[str] = ..., notifier: _Optional[_Union[_records_pb2.Requester, _Mapping]] = ...) -> None: ...

class CorrectionRequest(_message.Message):
    __slots__ = ("corrected", "reason")
    CORRECTED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    corrected: _records_pb2.ResidentRecord
    reason: str
    def __init__(self, corrected: _Optional[_Union[_records_pb2.ResidentRecord, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class ResidentCodeOffer(_message.Message):
    __slots__ = ("offer_id", "candidates")
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    offer_id: str
    candidates: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, offer_id: _Optional[str] = ..., candidates: _Optional[_Iterable[str]] = ...) -> None: ...

class ResidentCodeChangeRequest(_message.Message):
    __slots__ = ("resident_code", "offer_id", "chosen", "notifier")
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    CHOSEN_FIELD_NUMBER: _ClassVar[int]
    NOTIFIER_FIELD_NUMBER: _ClassVar[int]
    resident_code: str
    offer_id: str
    chosen: str
    notifier: _records_pb2.Requester
    def __init__(self, resident_code: _Optional[str] = ..., offer_id: _Optional[str] = ..., chosen: _Optional[str] = ..., notifier: _Optional[_Union[_records_pb2.Requester, _Mapping]] = ...) -> None: ...

class HouseholdSplitRequest(_message.Message):
    __slots__ = ("resident_code", "notification_date", "notifier")
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_DATE_FIELD_NUMBER: _ClassVar[int]
    NOTIFIER_FIELD_NUMBER: _ClassVar[int]
    resident_code: str
    notification_date: str
    notifier: _records_pb2.Requester
    def __init__(self, resident_code: _Optional[str] = ..., notification_date: _Optional[str] = ..., notifier: _Optional[_Union[_records_pb2.Requester, _Mapping]] = ...) -> None: ...

class HouseholdMergeRequest(_message.Message):
    __slots__ = ("from_household", "into_household", "notification_date", "notifier")
    FROM_HOUSEHOLD_FIELD_NUMBER: _ClassVar[int]
    INTO_HOUSEHOLD_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_DATE_FIELD_NUMBER: _ClassVar[int]
    NOTIFIER_FIELD_NUMBER: _ClassVar[int]
    from_household: str
    into_household: str
    notification_date: str
    notifier: _records_pb2.Requester
    def __init__(self, from_household: _Optional[str] = ..., into_household: _Optional[str] = ..., notification_date: _Optional[str] = ..., notifier: _Optional[_Union[_records_pb2.Requester, _Mapping]] = ...) -> None: ...

class HouseholderChangeRequest(_message.Message):
    __slots__ = ("household_number", "new_head_resident_code", "notification_date", "notifier")
    HOUSEHOLD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    NEW_HEAD_RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_DATE_FIELD_NUMBER: _ClassVar[int]
    NOTIFIER_FIELD_NUMBER: _ClassVar[int]
    household_number: str
    new_head_resident_code: str
    notification_date: str
    notifier: _records_pb2.Requester
    def __init__(self, household_number: _Optional[str] = ..., new_head_resident_code: _Optional[str] = ..., notification_date: _Optional[str] = ..., notifier: _Optional[_Union[_records_pb2.Requester, _Mapping]] = ...) -> None: ...

class HistoryReply(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[_records_pb2.ResidentRecord]
    def __init__(self, entries: _Optional[_Iterable[_Union[_records_pb2.ResidentRecord, _Mapping]]] = ...) -> None: ...

class HouseholdRequest(_message.Message):
    __slots__ = ("household_number",)
    HOUSEHOLD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    household_number: str
    def __init__(self, household_number: _Optional[str] = ...) -> None: ...

class ExportRequest(_message.Message):
    __slots__ = ("town_code", "include_removed", "purpose")
    TOWN_CODE_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_REMOVED_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    town_code: str
    include_removed: bool
    purpose: str
    def __init__(self, town_code: _Optional[str] = ..., include_removed: _Optional[bool] = ..., purpose: _Optional[str] = ...) -> None: ...

class CertificateRequest(_message.Message):
    __slots__ = ("kind", "resident_code", "include_individual_number", "justification", "items", "home_municipality_code", "card_number", "pin", "requester")
    KIND_FIELD_NUMBER: _ClassVar[int]
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_INDIVIDUAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    JUSTIFICATION_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    HOME_MUNICIPALITY_CODE_FIELD_NUMBER: _ClassVar[int]
    CARD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    PIN_FIELD_NUMBER: _ClassVar[int]
    REQUESTER_FIELD_NUMBER: _ClassVar[int]
    kind: CertificateKind
    resident_code: str
    include_individual_number: bool
    justification: str
    items: _containers.RepeatedScalarFieldContainer[str]
    home_municipality_code: str
    card_number: str
    pin: str
    requester: _records_pb2.Requester
    def __init__(self, kind: _Optional[_Union[CertificateKind, str]] = ..., resident_code: _Optional[str] = ..., include_individual_number: _Optional[bool] = ..., justification: _Optional[str] = ..., items: _Optional[_Iterable[str]] = ..., home_municipality_code: _Optional[str] = ..., card_number: _Optional[str] = ..., pin: _Optional[str] = ..., requester: _Optional[_Union[_records_pb2.Requester, _Mapping]] = ...) -> None: ...

class Certificate(_message.Message):
    __slots__ = ("issue_number", "kind", "issued_at", "place", "items_printed", "text", "html")
    ISSUE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    PLACE_FIELD_NUMBER: _ClassVar[int]
    ITEMS_PRINTED_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    HTML_FIELD_NUMBER: _ClassVar[int]
    issue_number: str
    kind: CertificateKind
    issued_at: str
    place: str
    items_printed: _containers.RepeatedScalarFieldContainer[str]
    text: str
    html: str
    def __init__(self, issue_number: _Optional[str] = ..., kind: _Optional[_Union[CertificateKind, str]] = ..., issued_at: _Optional[str] = ..., place: _Optional[str] = ..., items_printed: _Optional[_Iterable[str]] = ..., text: _Optional[str] = ..., html: _Optional[str] = ...) -> None: ...

class KioskRequest(_message.Message):
    __slots__ = ("card_number", "pin", "kind")
    CARD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    PIN_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    card_number: str
    pin: str
    kind: CertificateKind
    def __init__(self, card_number: _Optional[str] = ..., pin: _Optional[str] = ..., kind: _Optional[_Union[CertificateKind, str]] = ...) -> None: ...

class IssuanceRecord(_message.Message):
    __slots__ = ("issue_number", "issued_at", "place", "terminal", "operator", "kind", "resident_code", "items_printed", "individual_number_printed", "justification", "requester")
    ISSUE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    PLACE_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    ITEMS_PRINTED_FIELD_NUMBER: _ClassVar[int]
    INDIVIDUAL_NUMBER_PRINTED_FIELD_NUMBER: _ClassVar[int]
    JUSTIFICATION_FIELD_NUMBER: _ClassVar[int]
    REQUESTER_FIELD_NUMBER: _ClassVar[int]
    issue_number: str
    issued_at: str
    place: str
    terminal: str
    operator: str
    kind: CertificateKind
    resident_code: str
    items_printed: _containers.RepeatedScalarFieldContainer[str]
    individual_number_printed: bool
    justification: str
    requester: _records_pb2.Requester
    def __init__(self, issue_number: _Optional[str] = ..., issued_at: _Optional[str] = ..., place: _Optional[str] = ..., terminal: _Optional[str] = ..., operator: _Optional[str] = ..., kind: _Optional[_Union[CertificateKind, str]] = ..., resident_code: _Optional[str] = ..., items_printed: _Optional[_Iterable[str]] = ..., individual_number_printed: _Optional[bool] = ..., justification: _Optional[str] = ..., requester: _Optional[_Union[_records_pb2.Requester, _Mapping]] = ...) -> None: ...

class IssuanceHistory(_message.Message):
    __slots__ = ("records",)
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[IssuanceRecord]
    def __init__(self, records: _Optional[_Iterable[_Union[IssuanceRecord, _Mapping]]] = ...) -> None: ...

class ResidentBatch(_message.Message):
    __slots__ = ("records", "skip_atena")
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    SKIP_ATENA_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[_records_pb2.ResidentRecord]
    skip_atena: bool
    def __init__(self, records: _Optional[_Iterable[_Union[_records_pb2.ResidentRecord, _Mapping]]] = ..., skip_atena: _Optional[bool] = ...) -> None: ...

class LoadSummary(_message.Message):
    __slots__ = ("records", "batches", "last_update_sequence")
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    LAST_UPDATE_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    records: int
    batches: int
    last_update_sequence: int
    def __init__(self, records: _Optional[int] = ..., batches: _Optional[int] = ..., last_update_sequence: _Optional[int] = ...) -> None: ...

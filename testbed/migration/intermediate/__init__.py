"""A foreign vendor's export (中間標準レイアウト): its layout (layout.py), writing it (writer.py), reading it with
文字同定 (reader.py) and the vendor's 外字 on the way (characters.py)."""
from testbed.migration.intermediate.characters import CharacterReport, Identification, VendorCharacters
from testbed.migration.intermediate.layout import (
    FILES, LAYOUT, MANIFEST, NOT_CARRIED, PERSON, HOUSEHOLD, GAIJI, FileSpec, Item, TableEntry, VendorExportError,
    markdown,
)
from testbed.migration.intermediate.reader import Import, check_cell, read_export, read_manifest
from testbed.migration.intermediate.writer import as_vendor_register, with_register_gaiji, write_export

__all__ = [
    "CharacterReport", "FILES", "FileSpec", "GAIJI", "HOUSEHOLD", "Identification", "Import", "Item", "LAYOUT",
    "MANIFEST", "NOT_CARRIED", "PERSON", "TableEntry", "VendorCharacters", "VendorExportError", "as_vendor_register",
    "check_cell", "markdown", "read_export", "read_manifest", "with_register_gaiji", "write_export",
]

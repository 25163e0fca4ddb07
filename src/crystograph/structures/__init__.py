"""Every supported input format -> pymatgen ``Structure``, with errors that name the file, row and reason.

Formats (inferred from the path; ``fmt=`` overrides):

==========  ============================================================  ==========================================
``fmt``     path                                                          id / targets
==========  ============================================================  ==========================================
cif         ``*.cif``, ``*.cif.gz`` (several data blocks -> several)      file stem (``stem_2``... for extra blocks)
poscar      ``POSCAR*``, ``CONTCAR*``, ``*.vasp``, ``*.poscar``           file name / none
json        ``*.json[.gz]``: a pymatgen Structure dict, a list of them,   stem, ``properties["id"]`` or ``stem_N`` /
            or ``{id: Structure dict}``                                   ``Structure.properties``
matbench    ``*.json[.gz]`` with ``index``/``columns``/``data``            index / second column unless ``target``
db          ``*.db`` (ASE database)                                       ``row.id`` or ``id_column`` / key-value pairs
cgcnn       folder with ``id_prop.csv`` (id,target[,more]) + ``<id>.cif``  id_prop.csv
csv         ``*.csv[.gz]`` with a CIF-text column (``cif_column``)        ``id_column`` or material_id/id/mbid or row
==========  ============================================================  ==========================================

A folder without ``id_prop.csv`` means every (non-hidden) file directly inside it. Rows are numbered from 1
(data rows, header excluded); sites from 0, as in pymatgen.

Batch reading (``read_structures``) never drops an input silently: every row / file / entry ends up either in
``ReadResult.records`` or in ``ReadResult.skipped`` (``strict=True`` raises the first ``InputError`` instead).

Modules: ``records`` (StructureRecord, ReadResult), ``validate`` (structure checks), ``parsing`` (CIF / POSCAR /
pymatgen-dict text parsers), ``formats`` (format detection), ``readers`` (per-file readers and dispatch),
``tables`` (MatBench JSON, ASE db, CGCNN id_prop.csv and CSV rows), ``reading`` (read_structures & co.).
"""

from crystograph.structures.formats import FORMATS, SUPPORTED, detect_format
from crystograph.structures.parsing import parse_cif, parse_poscar
from crystograph.structures.reading import (
    read_structure,
    read_structures,
    write_structures_csv,
)
from crystograph.structures.records import ReadResult, StructureRecord
from crystograph.structures.validate import MAX_Z, MIN_DISTANCE, validate_structure

__all__ = [
    "FORMATS",
    "MAX_Z",
    "MIN_DISTANCE",
    "SUPPORTED",
    "ReadResult",
    "StructureRecord",
    "detect_format",
    "parse_cif",
    "parse_poscar",
    "read_structure",
    "read_structures",
    "validate_structure",
    "write_structures_csv",
]

"""The gemmi fast path for plain CIFs gives pymatgen's Structure exactly, and leaves everything else to pymatgen."""

from __future__ import annotations

import csv
import gzip
import random
import warnings

import numpy as np
import pytest

from crystograph.errors import InputError
from crystograph.structures import parse_cif
from crystograph.structures.fast_cif import parse_plain_cif
from tests.conftest import shared_file

gemmi = pytest.importorskip("gemmi")

P1 = """data_test
_symmetry_space_group_name_H-M   'P 1'
_cell_length_a   {a}
_cell_length_b   4.5
_cell_length_c   5.25(3)
_cell_angle_alpha   90.0
_cell_angle_beta   {beta}
_cell_angle_gamma   120.0
loop_
 _symmetry_equiv_pos_site_id
 _symmetry_equiv_pos_as_xyz
  1  'x, y, z'
loop_
 _atom_site_type_symbol
 _atom_site_label
 _atom_site_fract_x
 _atom_site_fract_y
 _atom_site_fract_z
 _atom_site_occupancy
{sites}
"""
SITES = """  O  O1  0.33334  0.66667  -0.25  1
  Li  Li1  1.5  0.0  0.125  1
  O  O2  0.0  0.333300  0.75(2)  1.00
  Fe  Fe1  0.5  0.5  0.5  1.0"""


def _pymatgen(text: str):
    from pymatgen.io.cif import CifParser

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CifParser.from_str(text).parse_structures(primitive=False, on_error="warn")


def _assert_identical(fast, ref) -> None:
    assert np.array_equal(fast.lattice.matrix, ref.lattice.matrix)
    assert [site.species for site in fast] == [site.species for site in ref]
    assert np.array_equal(fast.frac_coords, ref.frac_coords)
    assert [site.label for site in fast] == [site.label for site in ref]


def _p1(sites: str = SITES, a: str = "3.9", beta: str = "95.0") -> str:
    return P1.format(a=a, beta=beta, sites=sites)


def test_plain_cif_matches_pymatgen_bit_for_bit():
    text = _p1()
    fast = parse_plain_cif(text)
    assert fast is not None
    _assert_identical(fast, _pymatgen(text)[0])
    # sorted by electronegativity, file order among equals; 1/3, 2/3 snapped; wrapped into [0, 1)
    assert [site.species_string for site in fast] == ["Li", "Fe", "O", "O"]
    assert [site.label for site in fast] == ["Li1", "Fe1", "O1", "O2"]
    assert fast.frac_coords[2].tolist() == [1 / 3, 2 / 3, 0.75]
    assert fast.frac_coords[0, 0] == 0.5
    assert parse_cif(text, "t.cif")[0] == parse_cif(text, "t.cif", reader="pymatgen")[0]


def test_random_cifwriter_structures_match_pymatgen():
    from pymatgen.core import Lattice, Structure
    from pymatgen.io.cif import CifWriter

    rng = np.random.default_rng(0)
    elements = ["H", "Li", "C", "N", "O", "Na", "Si", "Cl", "Fe", "Cu", "Sr", "Ba", "Pb", "U"]
    for _ in range(25):
        n = int(rng.integers(1, 30))
        lattice = Lattice.from_parameters(*rng.uniform(3, 12, 3), *rng.uniform(60, 120, 3))
        species = list(rng.choice(elements, n))
        structure = Structure(lattice, species, rng.uniform(-0.5, 1.5, (n, 3)))
        text = str(CifWriter(structure))
        fast = parse_plain_cif(text)
        assert fast is not None
        _assert_identical(fast, _pymatgen(text)[0])


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda t: t + "\n" + t.replace("data_test", "data_second"), id="two-blocks"),
        pytest.param(lambda t: t.replace("  1  'x, y, z'", "  1  'x, y, z'\n  2  '-x, -y, -z'"), id="symmetry"),
        pytest.param(lambda t: t.replace("0.5  0.5  0.5  1.0", "0.5  0.5  0.5  0.5"), id="partial-occupancy"),
        pytest.param(lambda t: t.replace("  Fe  Fe1", "  Fe2+  Fe1"), id="oxidation-symbol"),
        pytest.param(lambda t: t + "loop_\n _atom_type_symbol\n _atom_type_oxidation_number\n  Fe  2\n",
                     id="oxidation-table"),
        pytest.param(lambda t: t.replace("  Fe  Fe1", "  Ow  Fe1"), id="water-symbol"),
        pytest.param(lambda t: t.replace("  Fe  Fe1", "  Ar  Fe1"), id="no-electronegativity"),
        pytest.param(lambda t: t.replace("0.5  0.5  0.5  1.0", "0.50001  0.5  1.5  1.0").replace(
            "  Li  Li1  1.5  0.0  0.125  1", "  Li  Li1  0.5  0.5  0.5  1"), id="coincident-sites"),
        pytest.param(lambda t: t.replace("0.5  0.5  0.5  1.0", "?  0.5  0.5  1.0"), id="unknown-coordinate"),
        pytest.param(lambda t: t.replace("_cell_length_a   3.9\n", ""), id="missing-cell"),
        pytest.param(lambda t: t.replace(" _atom_site_label\n", "").replace(" O1 ", " ").replace(" Li1 ", " ")
                     .replace(" O2 ", " ").replace(" Fe1 ", " "), id="no-labels"),
        pytest.param(lambda t: t.replace("_cell_length_a   3.9", "_cell_length_a   0.001"), id="thin-cell"),
        pytest.param(lambda t: t.replace("_cell_length_a   3.9", "_cell_length_a   0.0"), id="zero-cell"),
        pytest.param(lambda t: t[: t.index("  Fe  Fe1") + 12], id="truncated"),
        pytest.param(lambda t: t.replace("loop_\n _atom_site", "loop_\n _atom_site_x\n _atom_site", 1), id="bad-loop"),
    ],
)
def test_outside_the_fast_path_pymatgen_parses(change):
    text = change(_p1())
    assert parse_plain_cif(text) is None
    try:
        expected = parse_cif(text, "t.cif", reader="pymatgen")
    except InputError as exc:
        with pytest.raises(InputError) as got:
            parse_cif(text, "t.cif")
        assert str(got.value) == str(exc)
    else:
        assert parse_cif(text, "t.cif") == expected


def test_unknown_reader_is_refused():
    with pytest.raises(ValueError, match="reader='gemmi'"):
        parse_cif(_p1(), "t.cif", reader="gemmi")


@pytest.mark.shared_data
@pytest.mark.parametrize(
    "relpath",
    ["mp_mtcgcnn/mp_eform_gap.csv.gz", pytest.param("qmof/qmof_bandgap_le150.csv.gz", marks=pytest.mark.slow),
     "matbench/matbench_jdft2d.csv.gz", "c2db/c2db.csv.gz", "perov5/perov5_valtest.csv.gz"],
)
def test_real_datasets_take_the_fast_path_and_match_pymatgen(relpath):
    csv.field_size_limit(10**9)
    with gzip.open(shared_file(relpath), "rt") as fh:
        rows = list(csv.DictReader(fh))
    column = next(c for c in rows[0] if c.lower() == "cif")
    for row in random.Random(0).sample(rows, 60):
        fast = parse_plain_cif(row[column])
        assert fast is not None
        _assert_identical(fast, _pymatgen(row[column])[0])

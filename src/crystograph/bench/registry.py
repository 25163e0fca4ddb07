"""Benchmark task registry: MatBench v0.1, UnconvBench, and offline stand-ins read from the shared data folder.

Every task says what it measures (target, unit, metric), where the data come from, how folds are made,
and, for a local dataset, which published task it stands in for and whether it is exact.

Fold schemes (see `crystograph.bench.folds`):
- ``matbench``: MatBench v0.1 official folds: `KFold(5, shuffle=True, random_state=18012019)` over the
  dataset order (`StratifiedKFold` with the same arguments for classification), ids ``mb-<task>-<row>``.
- ``unconvbench``: the UnconvBench authors' code: `KFold(5, shuffle=True, random_state=42)` over the
  dataset order, ids ``unconvbench_<task>-<row>``.
- ``column``: a fold column in the file (``official_test_fold`` in the local MatBench copies).
- ``kfold_by_id``: our own `KFold(5, shuffle=True, random_state=seed)` over the rows sorted by id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Metric = Literal["MAE", "ROC-AUC"]
TaskType = Literal["regression", "classification"]
Loader = Literal["local_csv", "matbench_download", "unconvbench_file"]
FoldScheme = Literal["matbench", "unconvbench", "column", "kfold_by_id"]

MATBENCH_SEED = 18012019
UNCONVBENCH_SEED = 42
N_FOLDS = 5

# Source of the UnconvBench task definitions (dataset file names, labels, fold seed).
UNCONVBENCH_CODE = "howardwang1997/unconvbench@1c90299bbc19ee27a7440db1c48eee9ea90f6bd2 unconvbench/utils/constant.py"
UNCONVBENCH_FIGSHARE = "https://figshare.com/articles/dataset/UnconvBench/26657428"
MATBENCH_URL = "https://ml.materialsproject.org/projects/{name}.json.gz"


@dataclass(frozen=True)
class Task:
    """One benchmark task. `filters` are (column, op, value) with op in ==, <=, >=, between, notna; `sample`
    then keeps a seeded random subset of the filtered rows that have a target: an int = that many rows, a
    float in (0, 1) = that fraction (pandas `DataFrame.sample(random_state=sample_seed)`, rows kept in file
    order)."""

    name: str
    target: str  # column / key of the target in the source data
    unit: str
    metric: Metric
    task_type: TaskType
    expected_size: int | None  # rows of the published task (or of the local file after filtering)
    source: str  # where the data come from, in words (repository@commit path, DOI, …)
    url: str | None  # public download URL; None when there is none we could verify
    loader: Loader
    fold_scheme: FoldScheme
    benchmark: str  # "MatBench v0.1", "UnconvBench", "local"
    paper_name: str | None = None  # row name in the paper's Table 2 / Table 3 (or None)
    stand_in_for: str | None = None  # the published task this local dataset stands in for
    exact: bool = False  # True when the local data (and folds) equal the published task
    # local datasets
    file: str | None = None  # path relative to the data dir
    id_column: str | None = None
    fold_column: str | None = None
    filters: tuple[tuple[str, str, object], ...] = ()
    sample: int | float | None = None
    sample_seed: int = 0
    # downloads
    sha256: str | None = None
    remote_name: str | None = None  # e.g. matbench_jdft2d / unconvbench_supercon
    notes: str = ""
    tags: tuple[str, ...] = field(default=())

    @property
    def is_stand_in(self) -> bool:
        """A local dataset that is not the published task itself."""
        return self.stand_in_for is not None and not self.exact

    @property
    def higher_is_better(self) -> bool:
        return self.metric == "ROC-AUC"

    def label(self) -> str:
        """One line for tables and results JSON: what this task is relative to the published one."""
        if self.stand_in_for is None:
            if self.benchmark == "local":
                return "local dataset (no published benchmark)"
            return f"{self.benchmark} {self.remote_name or self.name}"
        kind = "exact copy of" if self.exact else "stand-in for"
        return f"{kind} {self.stand_in_for}"


# --------------------------------------------------------------------------------------------------
# MatBench v0.1 (the 8 tasks of the paper's Table 3 / Table B2); URL and sha256 from matminer 0.10.1's
# matminer/datasets/dataset_metadata.json.
_MB = [
    # name, target, unit, metric, type, size, sha256, paper row
    ("matbench_dielectric", "n", "unitless", "MAE", "regression", 4764,
     "83befa09bc2ec2f4b6143afc413157827a90e5e2e42c1eb507ccfa01bf26a1d6", "dielectric"),
    ("matbench_jdft2d", "exfoliation_en", "meV/atom", "MAE", "regression", 636,
     "26057dc4524e193e32abffb296ce819b58b6e11d1278cae329a2f97817a4eddf", "jdft2d"),
    ("matbench_log_gvrh", "log10(G_VRH)", "log10(GPa)", "MAE", "regression", 10987,
     "098af941f4c663270f1fe21abf20ffad6fb85ecbfcba5786ceac03983ac29da7", "log_gvrh"),
    ("matbench_log_kvrh", "log10(K_VRH)", "log10(GPa)", "MAE", "regression", 10987,
     "44b113ddb7e23aa18731a62c74afa7e5aa654199e0db5f951c8248a00955c9cd", "log_kvrh"),
    ("matbench_mp_e_form", "e_form", "eV/atom", "MAE", "regression", 132752,
     "dedcb1d4ba2e3e50dbdd45ba5bc647a00e9c2bcf8f8bf556dc8e92caa39eb21f", "mp_e_form"),
    ("matbench_mp_gap", "gap pbe", "eV", "MAE", "regression", 106113,
     "58b65746bd88329986ed66031a2ac1369c7c522f7bc9f9081528e07097c2c057", "mp_gap"),
    ("matbench_mp_is_metal", "is_metal", "-", "ROC-AUC", "classification", 106113,
     "9a028ed5750a4c76ca36e9f3c8d48fe0bf3fb21b76ec2289e58ae7048d527919", "mp_is_metal"),
    ("matbench_phonons", "last phdos peak", "cm^-1", "MAE", "regression", 1265,
     "4db551f21ec5f577e6202725f10e34dfc509aa7df3a6bdaac497da7f6dbbb9b3", "phonons"),
]

# UnconvBench (paper Table 1); dataset files and labels from the authors' code (UNCONVBENCH_CODE).
_UB = [
    # name, remote dataset name, label key, unit, size, original file in the authors' code, paper row
    ("2d_e_exf", "unconvbench_exfoliation", "exfoliation_energy_per_atom", "eV/atom", 4527,
     "2dmatpedia_exfoliation.json (2DMatPedia)", "2d_e_exf"),
    ("2d_e_tot", "unconvbench_2d_e_tot", "etot", "eV", 3520, "c2db_atoms.json (C2DB)", "2d_e_tot"),
    ("2d_gap", "unconvbench_2d_gap", "gap", "eV", 3520, "c2db_atoms.json (C2DB)", "2d_gap"),
    ("co2_adsp", "unconvbench_co2_adsp", "max_co2_adsp", "wt%", 13765, "hmof_sub.json (hMOF)", None),
    ("qmof", "unconvbench_qmof", "energy_total", "eV", 5106, "qmof_sub.json (QMOF)", "qmof"),
    ("supercon", "unconvbench_supercon", "Tc", "K", 1058, "jarvis_epc_data_figshare_1058.json (JARVIS EPC)",
     "supercon"),
    ("defected", "unconvbench_defected", "ef", "eV/atom", 530, "vacancydb.json (JARVIS vacancy DB)", "defected"),
    ("src_bulk", "unconvbench_src_bulk", "ef", "eV/atom", 530, "jdftvac.json (JARVIS)", None),
    ("bulk_s", "unconvbench_bulk_s", "eform", "eV/atom", 5000, "eform_s.json (Materials Project)", None),
    ("bulk_m", "unconvbench_bulk_m", "eform", "eV/atom", 5000, "eform_m.json (Materials Project)", None),
    ("bulk_l", "unconvbench_bulk_l", "eform", "eV/atom", 5000, "eform_l.json (Materials Project)", None),
]

_UB_NOTE = (
    "Dataset file, label and folds (KFold(5, shuffle, random_state=42) over the file order) as in the authors' "
    f"code {UNCONVBENCH_CODE}; their README points to Figshare ({UNCONVBENCH_FIGSHARE}) for the files "
    "`ub_<name>.json`. Source not verified here: no file URL or checksum could be checked, so nothing is "
    "downloaded; place `ub_<name>.json` under <data_dir>/unconvbench/ to run it."
)


def _matbench_tasks() -> list[Task]:
    out = []
    for name, target, unit, metric, ttype, size, sha, paper in _MB:
        out.append(Task(
            name=name, target=target, unit=unit, metric=metric, task_type=ttype, expected_size=size,
            source=f"MatBench v0.1 (Dunn et al. 2020) via matminer dataset {name}",
            url=MATBENCH_URL.format(name=name), loader="matbench_download", fold_scheme="matbench",
            benchmark="MatBench v0.1", paper_name=paper, sha256=sha, remote_name=name,
        ))
    return out


def _unconvbench_tasks() -> list[Task]:
    out = []
    for name, remote, label, unit, size, orig, paper in _UB:
        out.append(Task(
            name=name, target=label, unit=unit, metric="MAE", task_type="regression", expected_size=size,
            source=f"UnconvBench {remote}: {orig}", url=None, loader="unconvbench_file",
            fold_scheme="unconvbench", benchmark="UnconvBench", paper_name=paper, remote_name=remote,
            notes=_UB_NOTE,
        ))
    return out


def _local(name: str, **kw) -> Task:
    kw.setdefault("metric", "MAE")
    kw.setdefault("task_type", "regression")
    kw.setdefault("loader", "local_csv")
    kw.setdefault("fold_scheme", "kfold_by_id")
    kw.setdefault("benchmark", "local")
    kw.setdefault("url", None)
    return Task(name=name, **kw)


def _local_tasks() -> list[Task]:
    mp = dict(file="mp_mtcgcnn/mp_eform_gap.csv.gz", id_column="material_id",
              source="kdmsit/mt-cgcnn@bdfaf106c3bcc7d49f543da7eabc5fed4fb733b3 data/ (MP ~2018, 36,738 structures)")
    bulk_note = ("MP formation energy split by atoms per cell at the tertile cut points of the data README "
                 "(<= 11 / 12-28 / >= 29). UnconvBench samples 5,000 per bin with its own thresholds (the paper's "
                 "Fig. 8 caption gives 1-12 / 13-30 / 31-368 atoms); here all rows of the bin are used.")
    return [
        _local("local_matbench_jdft2d", target="exfoliation_en", unit="meV/atom", expected_size=636,
               file="matbench/matbench_jdft2d.csv.gz", id_column="mbid", fold_column="official_test_fold",
               fold_scheme="column", paper_name="jdft2d", stand_in_for="MatBench matbench_jdft2d", exact=True,
               remote_name="matbench_jdft2d",
               source="Zhang-NJ-Lab/Datasets@6a69f1142310576031292022a1e78266afbd35ca matbench_jdft2d.csv "
                      "(matminer dataframe; CIFs rebuilt from the printed structures)",
               notes="All 636 rows with the official MatBench ids and folds (official_test_fold); structures "
                     "printed to 6 digits and re-parsed, cell orientation lost."),
        _local("local_matbench_phonons", target="last_phdos_peak", unit="cm^-1", expected_size=1265,
               file="matbench/matbench_phonons.csv.gz", id_column="mbid", fold_column="official_test_fold",
               fold_scheme="column", paper_name="phonons", stand_in_for="MatBench matbench_phonons", exact=True,
               remote_name="matbench_phonons",
               source="Zhang-NJ-Lab/Datasets@6a69f1142310576031292022a1e78266afbd35ca matbench_phonons.csv "
                      "(matminer dataframe; CIFs rebuilt from the printed structures)",
               notes="All 1265 rows with the official MatBench ids and folds (official_test_fold)."),
        _local("local_supercon", target="tc_K", unit="K", expected_size=1056, file="supercon/supercon.csv.gz",
               id_column="material_id", paper_name="supercon", stand_in_for="UnconvBench supercon",
               source="txie-93/cdvae@840cd7050f711e9e58a8fbbb1d5e3aa3bab70599 data/supercon (JARVIS EPC Tc)",
               notes="1056 of UnconvBench's 1058 rows (same JARVIS EPC source); our folds, not UnconvBench's."),
        _local("local_c2db_gap", target="band_gap", unit="eV", expected_size=1679, file="c2db/c2db.csv.gz",
               id_column="material_id", filters=(("cell_orthogonal", "==", True),), paper_name="2d_gap",
               stand_in_for="UnconvBench 2d_gap",
               source="lsdras/cdvae@a40bbcee75becd67f3b2443682f40e3023577551 data/c2db (C2DB PBE gap)",
               notes="Only rows with cell_orthogonal == True (1679 of 4033): the source's CIFs have wrong atom "
                     "positions in non-orthogonal cells. UnconvBench 2d_gap has 3520 rows."),
        _local("local_2dmatpedia_exf", target="exfoliation_energy_per_atom", unit="eV/atom", expected_size=904,
               file="2dmatpedia/2dmatpedia_filtered.csv.gz", id_column="material_id",
               filters=(("exfoliation_energy_per_atom", "notna", None),), paper_name="2d_e_exf",
               stand_in_for="UnconvBench 2d_e_exf",
               source="Franklalalala/learn_2dmatpedia@c8477c29254c9e9af26a6d21d11d761f5017bd43 filtered_2DMat.db",
               notes="Rows with a non-empty exfoliation energy (904) of an element-filtered 2DMatPedia subset "
                     "(periods 1-4, no Sc-Ni, no noble gases); UnconvBench 2d_e_exf has 4527 rows."),
        _local("local_jarvis_monolayers_phi", target="work_function", unit="eV", expected_size=1102,
               file="jarvis_monolayers/jarvis_monolayers_phi.csv.gz", id_column="jid",
               filters=(("work_function", "notna", None),),
               source="usnistgov/jarvis@84d97bd70f0767142d5865efc60eaa7180982aec jarvis/db/MonolayersJOBLIB",
               notes="Extra 2D set (JARVIS monolayer work function); no published benchmark. 2 rows without a "
                     "work function are left out."),
        _local("local_perov5", target="heat_ref", unit="eV/cell", expected_size=7572,
               file="perov5/perov5_valtest.csv.gz", id_column="material_id",
               stand_in_for="CDVAE Perov-5 property set (heat_ref)",
               source="txie-93/cdvae@f857f598d6f6cca5dc1ea0582d228f12dcc2c2ea data/perov_5 (val+test only)",
               notes="Target heat_ref (CDVAE's Perov-5 target, eV per 5-atom cell). Only the val+test splits "
                     "(7572 rows); not MatBench matbench_perovskites (that task's target is heat_all, 18,928 "
                     "rows, unmappable ids). Our 5-fold CV over all 7572 rows."),
        _local("local_mp_e_form", target="formation_energy_per_atom", unit="eV/atom", expected_size=36738,
               paper_name="mp_e_form", stand_in_for="MatBench matbench_mp_e_form",
               notes="36,738 of 132,752 rows, an older MP snapshot; official folds do not apply.", **mp),
        _local("local_mp_gap", target="band_gap", unit="eV", expected_size=36738, paper_name="mp_gap",
               stand_in_for="MatBench matbench_mp_gap",
               notes="36,738 of 106,113 rows, an older MP snapshot; official folds do not apply.", **mp),
        _local("local_bulk_s", target="formation_energy_per_atom", unit="eV/atom", expected_size=12345,
               filters=(("natoms", "<=", 11),), stand_in_for="UnconvBench bulk_s", notes=bulk_note, **mp),
        _local("local_bulk_m", target="formation_energy_per_atom", unit="eV/atom", expected_size=12381,
               filters=(("natoms", "between", (12, 28)),), stand_in_for="UnconvBench bulk_m", notes=bulk_note,
               **mp),
        _local("local_bulk_l", target="formation_energy_per_atom", unit="eV/atom", expected_size=12012,
               filters=(("natoms", ">=", 29),), stand_in_for="UnconvBench bulk_l", notes=bulk_note, **mp),
        *_paper_subsets(mp),
        _local("local_qmof_gap", target="bandgap_pbe", unit="eV", expected_size=16636,
               file="qmof/qmof_bandgap_le150.csv.gz", id_column="qmof_id",
               stand_in_for="QMOF PBE band-gap benchmark (MOFormer/CGCNN)",
               source="structures MehrdadJalali-AI/qmof-rec@10082124cf81a90ce40b4bd6306862416a46d2e6, labels "
                      "zcao0420/MOFormer@6a853cd44f05eb3ca117dd1d5069a83d21618339 QMOF_large_graph.csv",
               notes="QMOF MOFs with <= 150 atoms (16,636 of 20,372). Not UnconvBench qmof: that task's target "
                     "is QMOF energy_total (eV), not the band gap."),
    ]


# The paper's size bins (Fig. 8 caption: 1-12 / 13-30 / 31-368 atoms per cell) and its 10 % subset of mp_e_form
# (Fig. 12), drawn from the local MP set with this seed.
PAPER_SAMPLE_SEED = 0
PAPER_BULK_BINS = {"paper_bulk_s": (1, 12), "paper_bulk_m": (13, 30), "paper_bulk_l": (31, 368)}


def _paper_subsets(mp: dict) -> list[Task]:
    """bulk_s/m/l as the paper defines them (5,000 per atom-count bin) and the 10 % random subset of mp_e_form."""
    out = []
    for name, (lo, hi) in PAPER_BULK_BINS.items():
        out.append(_local(
            name, target="formation_energy_per_atom", unit="eV/atom", expected_size=5000,
            filters=(("natoms", "between", (lo, hi)),), sample=5000, sample_seed=PAPER_SAMPLE_SEED,
            stand_in_for=f"UnconvBench {name.removeprefix('paper_')}", tags=("ablation",),
            notes=f"MP formation energy, cells of {lo}-{hi} atoms (the paper's Fig. 8 bins), 5,000 rows drawn with "
                  f"seed {PAPER_SAMPLE_SEED}; not UnconvBench's own file (an older MP snapshot; our folds). The "
                  "local MP set has at most 200 atoms per cell.", **mp))
    out.append(_local(
        "mp_e_form_10pct", target="formation_energy_per_atom", unit="eV/atom", expected_size=3674, sample=0.1,
        sample_seed=PAPER_SAMPLE_SEED, stand_in_for="the paper's 10 % random subset of MatBench mp_e_form (Fig. 12)",
        tags=("ablation",), notes=f"A seeded (seed {PAPER_SAMPLE_SEED}) 10 % random subset of the local MP set "
                                  "(3,674 of 36,738 rows), as the paper's layout study (Figs. 11-12).", **mp))
    return out


def _build() -> dict[str, Task]:
    tasks = _matbench_tasks() + _unconvbench_tasks() + _local_tasks()
    names = [t.name for t in tasks]
    assert len(names) == len(set(names)), "duplicate task names"
    return {t.name: t for t in tasks}


TASKS: dict[str, Task] = _build()

MATBENCH_TASKS = tuple(t.name for t in TASKS.values() if t.benchmark == "MatBench v0.1")
UNCONVBENCH_TASKS = tuple(t.name for t in TASKS.values() if t.benchmark == "UnconvBench")
LOCAL_TASKS = tuple(t.name for t in TASKS.values() if t.benchmark == "local" and "ablation" not in t.tags)
# Subsets of a local dataset defined for the paper's ablation studies (`crystograph ablate`).
ABLATION_TASKS = tuple(t.name for t in TASKS.values() if "ablation" in t.tags)

# Convenience groups for the CLI (`crystograph bench --tasks local`).
GROUPS: dict[str, tuple[str, ...]] = {
    "matbench": MATBENCH_TASKS,
    "unconvbench": UNCONVBENCH_TASKS,
    "local": LOCAL_TASKS,
    "ablation": ABLATION_TASKS,
    "local_small": ("local_matbench_jdft2d", "local_matbench_phonons", "local_supercon", "local_c2db_gap",
                    "local_2dmatpedia_exf", "local_jarvis_monolayers_phi"),
}


def get_task(name: str) -> Task:
    """The task called `name`; an InputError listing the known names otherwise."""
    try:
        return TASKS[name]
    except KeyError:
        from crystograph.errors import InputError

        raise InputError("--tasks", f"unknown task {name!r}; known: {', '.join(TASKS)} "
                                    f"(groups: {', '.join(GROUPS)})") from None


def resolve_tasks(names: str | list[str] | tuple[str, ...]) -> list[Task]:
    """Task names and group names (comma-separated string or list) → tasks, in order, without repeats."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    out: list[Task] = []
    for name in names:
        for n in GROUPS.get(name, (name,)):
            task = get_task(n)
            if task not in out:
                out.append(task)
    return out

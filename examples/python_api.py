"""Train on a CSV with a CIF column, then predict from Python.

    .venv/bin/python examples/python_api.py ../shared/data/supercon/supercon.csv.gz
"""

import sys

import crystograph
from crystograph.config import ModelConfig, TrainConfig
from crystograph.data import build_graphs
from crystograph.structures import read_structures
from crystograph.train.run import RunOptions, train_run

data = read_structures(sys.argv[1], target="tc_K", id_column="material_id")
print(data.summary())
graphs, skipped = build_graphs(data.records, targets=["tc_K"])
result = train_run(graphs, "runs/api_example", ModelConfig.preset("small"), TrainConfig(lr=1e-3, max_minutes=1),
                   RunOptions(targets=["tc_K"]))
print(f"test MAE {result.mean_mae:.3f} K (mean predictor {result.mean_dummy_mae:.3f} K)")

model = crystograph.load_model("runs/api_example")
print(model.predict_structure(data.records[0].structure))
print(model.predict_structures([r.structure for r in data.records[:5]], batch_size=64))

"""Section 4's rows from made-up numbers: every stage and augmentation gets its ratio rows,
a ratio under its target is marked missed, and an old benchmarks.json still renders."""

from __future__ import annotations

from benchmarks import training_speed


def pipeline_result(keras_rate: float) -> dict:
    ways = {
        "notes": {"frozen_images_per_s": 10.0, "fine_tune_images_per_s": 8.0, "run_wall_s": 90.0},
        "keras": {"frozen_images_per_s": keras_rate, "fine_tune_images_per_s": 10.0, "run_wall_s": 60.0},
        "convnet-train": {"frozen_images_per_s": 40.0, "fine_tune_images_per_s": 24.0, "run_wall_s": 40.0},
    }
    results = {"none": ways, "seed": ways}
    speedups = {
        augment: {
            f"over_{other}_{stage}": ways["convnet-train"][f"{stage}_images_per_s"]
            / ways[other][f"{stage}_images_per_s"]
            for other in ("notes", "keras")
            for stage in ("frozen", "fine_tune")
        }
        for augment in results
    }
    return {
        "results": results,
        "speedups": speedups,
        "images": 8,
        "image_size": 32,
        "epochs_per_stage": 2,
        "batch_size": 4,
    }


CACHE = {
    "plain_fit_s_per_epoch": 2.0,
    "cached_s_per_epoch": 0.1,
    "feature_extraction_s_once": 3.0,
    "epoch_speedup": 20.0,
    "speedup_over_10_epochs_including_extraction": 5.0,
    "images": 8,
    "image_size": 32,
    "epochs_timed": 1,
}


def targeted(rows) -> dict[str, bool | None]:
    return {row.measure: row.met for row in rows if row.met is not None}


def test_ratio_rows_per_stage_and_augmentation_and_a_miss_is_marked() -> None:
    rows, notes = training_speed.rows({"pipeline": pipeline_result(keras_rate=39.0), "feature_cache": CACHE})
    met = targeted(rows)
    frozen_over_keras = [name for name in met if "frozen" in name and "over hand-written" in name]
    assert len(frozen_over_keras) == 2  # with and without augmentation
    assert not any(met[name] for name in frozen_over_keras)  # 40/39 is under the target
    assert all(met[name] for name in met if "fine-tuning" in name)  # 2.4x and 3x
    assert met["epoch speed-up"] is True
    assert len(notes) == 3  # the pipeline setting, what a miss in a compute-bound cell means, the cache


def test_benchmarks_json_from_before_the_pipeline_section_still_renders() -> None:
    rows, _ = training_speed.rows(CACHE)
    assert [row.met for row in rows if row.met is not None] == [True]


def test_where_convnet_trains_run_time_goes_is_one_row_per_phase() -> None:
    result = pipeline_result(keras_rate=20.0)
    phases = {"_prepare_data": 0.1, "_build": 2.0, "_stage_inputs": 3.0, "epochs": 30.0, "_finish": 1.5, "other": 3.4}
    result["results"]["seed"] = {way: dict(values) for way, values in result["results"]["seed"].items()}
    result["results"]["seed"]["convnet-train"]["phases_s"] = phases
    rows, _ = training_speed.rows({"pipeline": result, "feature_cache": CACHE})
    phase_rows = [row for row in rows if "convnet-train's run" in row.measure]
    assert len(phase_rows) == len(phases)  # only the run that recorded them
    assert all(row.measure.startswith("seed augmentation") for row in phase_rows)
    assert any("calibration, result.json and the validation report" in row.measure for row in phase_rows)

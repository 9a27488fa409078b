"""Train a classifier on a folder of class folders and leave a self-contained run folder.

Pretrained bases (`--weights imagenet` or a weights file) train in two stages, as in the
Keras transfer-learning guide: (1) the new head on a frozen base, (2) the top of the base
unfrozen at a lower learning rate, its BatchNorm layers kept in inference mode. Anything
that starts from random weights -- the from-scratch networks, and keras.applications
bases with `--weights none` -- trains whole in one stage with BatchNorm in training mode:
a frozen random base (BatchNorm in inference mode, statistics never learned) hands the
head near-zero features and the run sits at chance. Such a base's BatchNorm statistics
are recomputed before every validation (callbacks.BatchNormRecalibration).

What the run folder holds, and every file's name: convnet_common.run_layout.
What a finished run writes beside its checkpoint (result.json, the validation report):
training.run_report; continuing an interrupted run (`--resume`): training.resume_run.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path

import keras

from convnet_common.atomic import write_text_atomic
from convnet_common.run_layout import RunFolder
from convnet_common.terminal_text import terminal_safe
from training import chance, data, feature_cache, mixed_precision, registry
from training.augment import AugmentSpec, build_augmentation, resolve_augment
from training.callbacks import (
    BatchNormRecalibration,
    HistoryLog,
    ProgressLog,
    RestoreCallbackState,
    ResumePoint,
    ResumeState,
    plateau_callbacks,
    read_history,
)
from training.checkpoints import BestCheckpoint, restore_optimizer, restore_weights
from training.cluster import TrainingPlan
from training.config import TrainConfig
from training.model_builder import (
    BASE_LAYER,
    build_classifier,
    build_training_model,
    set_trainable_for_stage,
)
from training.progress import Progress, planned_last_epoch
from training.registry import HeadOptions
from training.run_folder import RunFolderGuard
from training.run_lock import RunLock, refuse_existing_run
from training.run_report import TrainResult, write_run_outputs
from training.weights import resolve_weights


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def make_optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=0.9)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate)
    return keras.optimizers.Adam(learning_rate)


class Trainer:
    """One run: resolves the configuration, prepares data, and runs the stages."""

    def __init__(
        self,
        config: TrainConfig,
        resume: ResumeState | None = None,
        callbacks: list | None = None,
        progress: Progress | None = None,
        plan: TrainingPlan | None = None,
    ):
        config.validate()
        self.config = config
        # The strategy (training.cluster); None: chosen locally when training starts.
        self.plan = plan
        self.resume = resume
        self.extra_callbacks = callbacks or []
        self.progress = progress or Progress()
        self.backbone = registry.get_backbone(config.backbone)
        config.image_size = config.image_size or self.backbone.default_image_size
        # Only a pretrained base is frozen and fine-tuned in a second stage (module docstring).
        self.frozen_base = self.backbone.frozen_base and config.weights != "none"
        if config.fine_tune_epochs is None:
            config.fine_tune_epochs = 5 if self.frozen_base else 0
        elif config.fine_tune_epochs and not self.frozen_base:
            _log(
                f"--fine-tune-epochs {config.fine_tune_epochs} does not apply: without pretrained weights "
                f"{self.backbone.name} trains whole in one stage (--epochs)"
            )
            config.fine_tune_epochs = 0
        self.spec: AugmentSpec = resolve_augment(config.augment)
        config.augmentation = self.spec.to_dict()
        config.dataset_name = config.dataset_name or data.default_dataset_name(config.data_dir)
        # A resumed run loads its weights from the checkpoint: no download needed.
        self.weights = None if resume else resolve_weights(config.weights, self.backbone)
        self.run_dir = Path(config.out)
        self.folder = RunFolder(self.run_dir)
        self.stages = [(1, config.epochs, config.learning_rate)]  # (stage, epochs, learning rate)
        if self.frozen_base and config.fine_tune_epochs:
            self.stages.append((2, config.fine_tune_epochs, config.fine_tune_learning_rate))

    # data ---------------------------------------------------------------------------
    def _prepare_data(self) -> None:
        config = self.config
        self.scanned, self.train_samples, self.val_samples = data.prepare_split(
            config.data_dir, config.val_dir, config.val_fraction, config.seed
        )
        for path, reason in self.scanned.skipped:
            _log(terminal_safe(f"skipped {path}: {reason}"))  # a stranger's file name
        counts = [sum(1 for s in self.train_samples if s.label == i) for i in range(len(self.scanned.class_names))]
        self.class_weights = data.class_weights_for(counts, config.class_weights, config.imbalance_ratio)
        _log(
            f"{len(self.scanned.class_names)} classes, {len(self.train_samples)} training and "
            f"{len(self.val_samples)} validation images ({len(self.scanned.skipped)} skipped)"
            + (", class weights on" if self.class_weights else "")
        )
        self.progress.dataset(self.scanned.class_names, self.train_samples, self.val_samples, self.scanned.skipped)

    def _write_records(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.config.save(self.folder.config)
        split = {
            "labels": self.scanned.class_names,
            "train": [[s.path, s.label] for s in self.train_samples],
            "val": [[s.path, s.label] for s in self.val_samples],
            "skipped": [[path, reason] for path, reason in self.scanned.skipped],
            "class_weights": self.class_weights,
        }
        write_text_atomic(self.folder.split, json.dumps(split, indent=1))

    # model --------------------------------------------------------------------------
    def _build(self) -> None:
        config = self.config
        self.num_classes = len(self.scanned.class_names)
        self.classifier = build_classifier(
            self.backbone,
            self.num_classes,
            config.image_size,
            self.weights,
            HeadOptions(config.dropout, config.hidden_units, config.hidden_activation),
            normalize_polarity=config.normalize_polarity,
            freeze_base=self.frozen_base,
        )
        self.graph = build_training_model(self.classifier, self.backbone, self.num_classes)
        self.output_names = tuple(self.graph.loss_weights) if len(self.graph.loss_weights) > 1 else ()
        if self.resume and self.resume.checkpoint:
            restore_weights(self.graph.model, self.folder, self.resume.checkpoint)

    def _loss(self) -> keras.losses.Loss:
        return keras.losses.CategoricalCrossentropy(label_smoothing=self.config.label_smoothing)

    def _compile(self, model: keras.Model, learning_rate: float, multi_output: bool) -> str:
        loss = self._loss()
        optimizer = make_optimizer(self.config.optimizer, learning_rate)
        if multi_output:
            names = list(self.graph.loss_weights)
            model.compile(
                optimizer=optimizer,
                loss={name: loss for name in names},
                loss_weights=dict(self.graph.loss_weights),
                metrics={self.graph.main_output: ["accuracy"]},
            )
            return f"val_{self.graph.main_output}_accuracy"
        model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
        return "val_accuracy"

    # stages -------------------------------------------------------------------------
    def _stage_inputs(self, stage: int):
        """The model to fit and its datasets: a pretrained base's frozen part runs once and
        the rest trains on its cached outputs without augmentation (feature_cache); with
        augmentation it runs on ONNX Runtime in the input pipeline (frozen_engine), or in
        the whole graph with validation on its cached outputs. A base that trains whole
        changes its features every step and is never cached. Last: the callbacks that must
        run first (feature_cache.CachedValidation, standing in for the validation dataset)."""
        config = self.config
        cacheable = self.frozen_base and config.feature_cache and not self.output_names
        sizes, splits = (config.image_size, self.batch_size), (self.train_samples, self.val_samples)
        if cacheable and self.spec.is_identity:
            count = len(self.train_samples) + len(self.val_samples)
            models = feature_cache.stage_models(self.classifier, stage, count)
            if models is not None:
                inputs = (models, *splits, *sizes, self.num_classes, config.seed, self.class_weights)
                model, train_ds, val_ds = feature_cache.cached_inputs(*inputs)
                return model, False, train_ds, val_ds, []
        augmentation = build_augmentation(self.spec, seed=config.seed)
        common = dict(
            image_size=config.image_size,
            batch_size=self.batch_size,
            seed=config.seed,
            num_classes=self.num_classes,
            output_names=self.output_names,
        )

        def train_pipeline(frozen_part=None):
            return data.make_dataset(
                self.train_samples, shuffle=True, augmentation=augmentation, class_weights=self.class_weights,
                frozen_part=frozen_part, **common,
            )  # fmt: skip

        if cacheable and self.plan.role is None:  # cluster workers reduce fit's validation across them
            inputs = feature_cache.augmented_inputs(
                self.classifier, stage, splits, sizes, self.num_classes, self._loss(), train_pipeline
            )  # fmt: skip
            if inputs is not None:
                model, train_ds, val_ds, first_callbacks = inputs
                return model or self.graph.model, False, train_ds, val_ds, first_callbacks
        train_ds = train_pipeline()
        val_ds = data.make_dataset(self.val_samples, shuffle=False, **common)
        return self.graph.model, bool(self.output_names), train_ds, val_ds, []

    def _stage_description(self, stage: int, trainable: int) -> str:
        if stage == 2:
            return f"top {trainable} base layers unfrozen"
        if self.frozen_base:
            return "head on a frozen base"
        if self.backbone.frozen_base:  # a keras.applications base with --weights none
            return "whole network from random weights, BatchNorm in training mode, one stage"
        return "whole network"

    def _recalibration(self, stage: int, train_ds) -> list[BatchNormRecalibration]:
        """Precise BatchNorm statistics before each validation, for a base whose BatchNorm trains."""
        if stage != 1 or self.frozen_base:
            return []
        callback = BatchNormRecalibration(self.classifier, BASE_LAYER, train_ds)
        return [callback] if callback.layers else []

    def _run_stage(
        self, stage: int, epochs: int, learning_rate: float, state: ResumeState, history_rows: list[dict]
    ) -> ResumeState:
        trainable = set_trainable_for_stage(self.classifier, self.frozen_base, stage, self.config.unfreeze)
        model, multi_output, train_ds, val_ds, first_callbacks = self._stage_inputs(stage)
        train_ds, val_ds = self.plan.shard(train_ds), None if val_ds is None else self.plan.shard(val_ds)
        monitor = self._compile(model, self.plan.learning_rate(learning_rate), multi_output)
        resuming_stage = state.stage == stage and state.stage_end is not None
        start = state.next_epoch
        end = state.stage_end if resuming_stage else start + epochs
        if resuming_stage and state.optimizer_stage == stage and state.checkpoint:
            restore_optimizer(model.optimizer, model.trainable_variables, self.folder.epoch_optimizer(state.checkpoint))
        what = self._stage_description(stage, trainable)
        learning_rate = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
        _log(f"stage {stage} ({what}): epochs {start + 1}-{end}, learning rate {learning_rate:.2e}")
        self.progress.stage(stage, len(self.stages), (start + 1, end), learning_rate, model, what)

        self.best_checkpoint = BestCheckpoint(self.folder.best_checkpoint, self.classifier, monitor)
        self.best_checkpoint.resume(state.best, state.best_epoch)
        rename = {monitor: "val_accuracy", monitor[4:]: "accuracy"} if multi_output else {}
        callbacks = [  # the cached validation first: every later callback reads what it scores
            *first_callbacks,
            *self._recalibration(stage, train_ds),
            self.best_checkpoint,
            HistoryLog(self.folder.history, stage, history_rows, rename),
        ]
        config = self.config
        stateful = plateau_callbacks(monitor, config.early_stopping_patience, config.reduce_lr_patience)
        callbacks.extend(stateful.values())
        if resuming_stage and state.callbacks:
            callbacks.append(RestoreCallbackState(stateful, state.callbacks))
        if self.config.tensorboard:
            callbacks.append(keras.callbacks.TensorBoard(str(self.folder.logs), write_graph=False))
        # Last of ours: the resume point holds the learning rate and the patience counters
        # as this epoch's callbacks left them, so a resumed run decides as this one would.
        callbacks.append(ResumePoint(self.run_dir, self.graph.model, stage, end, self.best_checkpoint, stateful))
        if self.progress.enabled:  # after ResumePoint: it reports what was decided and saved
            run_end, sizes = (
                planned_last_epoch(self.stages, stage, start, end),
                (len(self.train_samples), self.batch_size),
            )
            callbacks.append(ProgressLog(self.progress, stage, run_end, sizes, self.best_checkpoint, rename, stateful))
        try:
            history = model.fit(
                train_ds,
                validation_data=val_ds,
                initial_epoch=start,
                epochs=end,
                callbacks=callbacks + self.extra_callbacks,
                verbose=0 if self.progress.enabled else 1 if sys.stdout.isatty() else 2,
                shuffle=False,  # the tf.data pipeline already shuffles, seeded
            )
        except BaseException:  # a stopped run leaves best.keras for export too
            with contextlib.suppress(Exception):  # never hide why the run ended
                self.best_checkpoint.write()
            raise
        self.best_checkpoint.write()
        completed = history.epoch[-1] + 1 if history.epoch else start
        next_state = ResumeState(
            stage=stage + 1,
            next_epoch=completed,
            best=self.best_checkpoint.best,
            best_epoch=self.best_checkpoint.best_epoch,
            checkpoint=state.checkpoint,
        )
        latest = ResumeState.load(self.run_dir)
        if latest is not None:
            next_state.checkpoint = latest.checkpoint
        next_state.save(self.run_dir)
        return next_state

    def run(self) -> TrainResult:
        self.progress.start(self.config, self.backbone.name, self.stages, self.resume)
        self._prepare_data()
        if self.resume is not None:
            return self._train()
        with RunFolderGuard(self.run_dir):  # a start that fails leaves no half-made run folder
            self._write_records()
            return self._train()

    def _train(self) -> TrainResult:
        with mixed_precision.policy_for(self.config.mixed_precision):
            return self._train_stages()

    def _train_stages(self) -> TrainResult:
        keras.utils.set_random_seed(self.config.seed)
        if self.config.deterministic:
            import tensorflow as tf

            tf.config.experimental.enable_op_determinism()
        if self.plan is None:
            self.plan = TrainingPlan.local(self.config.distribute, self.config.scale_learning_rate)
        # One step takes --batch-size images per replica (the global batch).
        self.batch_size = self.plan.global_batch(self.config.batch_size)
        with self.plan.strategy.scope():
            self._build()
            state = self.resume or ResumeState(stage=1, next_epoch=0)
            history_rows = read_history(self.folder.history) if self.resume else []
            history_rows = [row for row in history_rows if int(row["epoch"]) <= state.next_epoch]
            started = time.perf_counter()
            for stage, epochs, learning_rate in self.stages:
                if stage < state.stage or epochs == 0:
                    continue
                state = self._run_stage(stage, epochs, learning_rate, state, history_rows)
        state.finished = True
        state.save(self.run_dir)
        return self._finish(state, time.perf_counter() - started)

    def _verdict(self) -> chance.ChanceVerdict:
        """Whether the run beat chance, judged on its validation split and history."""
        counts = [sum(1 for s in self.train_samples if s.label == i) for i in range(len(self.scanned.class_names))]
        return chance.assess_run(
            read_history(self.folder.history),
            [s.label for s in self.val_samples],
            loss=f"{self.graph.main_output}_loss" if self.output_names else "loss",
            random_weights=self.config.weights == "none" and self.backbone.supports_imagenet,
            learning_rate=self.config.learning_rate,
            smallest_class=min(counts),
        )

    def _finish(self, state: ResumeState, seconds: float) -> TrainResult:
        result = TrainResult(
            self.run_dir,
            self.scanned.class_names,
            state.best,
            state.best_epoch,
            state.next_epoch,
            len(self.train_samples),
            len(self.val_samples),
            self.scanned.skipped,
        )
        verdict = self._verdict()
        stages = len(self.stages)
        base_training = self._stage_description(1, 0) + (
            "; then the top of the base, fine-tuned" if stages == 2 else ""
        )
        # Scored once, with the best weights already in memory (a multi-worker model would
        # predict collectively: there best.keras is loaded).
        best = getattr(self, "best_checkpoint", None)
        classifier = best.best_model() if best is not None and self.plan.role is None else None
        classifier = None if classifier is None else mixed_precision.as_float32(classifier)  # scored as exported
        write_run_outputs(
            self.folder,
            result,
            self.config,
            (self.backbone.name, stages, base_training),
            verdict,
            seconds,
            self.val_samples,
            classifier,
        )
        _log(
            f"best validation accuracy {state.best:.4f} (epoch {state.best_epoch}; chance "
            f"{verdict.chance_accuracy:.4f}); run saved in {self.run_dir}"
        )
        for line in verdict.lines() if not verdict.beats_chance else []:
            _log(line)
        self.progress.done(self.run_dir, state, read_history(self.folder.history), verdict.beats_chance)
        return result


def train(
    config: TrainConfig,
    callbacks: list | None = None,
    progress: Progress | None = None,
    plan: TrainingPlan | None = None,
) -> TrainResult:
    """A new run in `config.out`, which this process holds until it returns (training.run_lock).
    `plan`: the strategy to train under (a cluster's: training.distributed); None: local."""
    with RunLock(config.out):
        refuse_existing_run(config.out)
        return Trainer(config, callbacks=callbacks, progress=progress, plan=plan).run()

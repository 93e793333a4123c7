"""`GazeTrainer`'s train and test steps on Keras's JAX backend.

A JAX step is a pure function of the state that Keras's JAX trainer passes
around (trainable, non-trainable, optimizer and metric values), as in the
Keras guide "Customizing what happens in `fit()` with JAX". Rather than a
second copy of Eq. 9, it runs the trainer's own methods on those values,
each inside a `keras.StatelessScope` that maps the trainer's variables to
them:

1. `prepare_step`: the ordinal targets, the step's random draws (the seed
   generators' states advance in the scope), DwO's PGD on the input (its
   gradient from `jax.grad`, `tat_keras.adversarial.input_gradient`) and the
   teachers' probabilities;
2. `compute_step_losses` under `jax.value_and_grad` with respect to the
   trainable values (batch-norm statistics come back as updated
   non-trainable values);
3. `optimizer.stateless_apply`, then `update_trackers` on the metric values.

The teachers' weights are not part of Keras's state: they change at every
epoch without the step being traced again, so they enter the compiled step
as an argument of their own (`teacher_values`).

Example (with `KERAS_BACKEND=jax`; `GazeTrainer.fit` calls these steps by
itself):

>>> import numpy as np
>>> from tat_keras import models
>>> from tat_keras.training.trainer import GazeTrainer
>>> trainer = GazeTrainer(models.GazeNet(width_multiplier=0.125, x_bins=8, y_bins=8))
>>> trainer.compile(optimizer="adam")
>>> trainer.optimizer.build(trainer.trainable_variables)
>>> state = [[v.value for v in variables] for variables in (
...     trainer.trainable_variables, trainer.non_trainable_variables,
...     trainer.optimizer.variables, trainer.metrics_variables)]
>>> batch = ({n: np.zeros((4, 64, 64, 3), "float32") for n in models.INPUT_NAMES},
...          np.zeros((4, 2), "float32"))
>>> logs, state = train_step(trainer, state, [], batch)
>>> sorted(logs)
['error_cm', 'hard_loss', 'loss']
"""

import functools

import jax
import keras


def _values_after(scope, variables, values):
    """`values` of `variables`, with what the scope assigned to them."""
    updated = []
    for variable, value in zip(variables, values):
        current = scope.get_current_value(variable)
        updated.append(value if current is None else current)
    return updated


def teacher_variables(trainer):
    """The variables of the teachers that supervise the current epoch."""
    return [variable for teacher in trainer.teacher_models[: trainer.active_teachers]
            for variable in teacher.variables]


def teacher_values(trainer):
    """The current values of `teacher_variables`, an argument of the step."""
    return [variable.value for variable in teacher_variables(trainer)]


def _optimizer_positions(trainer):
    """Where each variable the optimizer trains sits in the trainer's state.

    `optimizer.stateless_apply` takes and returns values in the order the
    optimizer was built with, which need not be the trainer's (a restored
    run builds it from the student's variables).
    """
    positions = {id(v): i for i, v in enumerate(trainer.trainable_variables)}
    return [positions[id(v)] for v in trainer.optimizer._trainable_variables]


def train_step(trainer, state, teachers, data):
    """One stateless training step of `trainer` (a `GazeTrainer`).

    Args:
        trainer: `GazeTrainer`, compiled, on the JAX backend.
        state: `(trainable, non_trainable, optimizer, metrics)` value lists,
            in the order of the trainer's variable lists.
        teachers: list of values of `teacher_variables(trainer)`.
        data: `(inputs, gaze_cm)` batch.

    Returns:
        `(logs, state)`: the trackers' results and the new state.
    """
    trainable, non_trainable, optimizer_values, metric_values = state
    model_variables = trainer.trainable_variables + trainer.non_trainable_variables

    def mapping(trainable, non_trainable):
        return list(zip(model_variables, list(trainable) + list(non_trainable)))

    with keras.StatelessScope(state_mapping=mapping(trainable, non_trainable) + list(
            zip(teacher_variables(trainer), teachers))) as scope:
        inputs, gaze_cm, targets, draws, teacher_probs, rows = trainer.prepare_step(data)
    non_trainable = _values_after(scope, trainer.non_trainable_variables, non_trainable)

    def loss_of(trainable, non_trainable):
        with keras.StatelessScope(state_mapping=mapping(trainable, non_trainable)) as scope:
            loss, terms, probs = trainer.compute_step_losses(
                inputs, targets, draws, teacher_probs, rows)
        return loss, (terms, probs,
                      _values_after(scope, trainer.non_trainable_variables, non_trainable))

    (loss, (terms, probs, non_trainable)), gradients = jax.value_and_grad(
        loss_of, has_aux=True)(trainable, non_trainable)

    positions = _optimizer_positions(trainer)
    applied, optimizer_values = trainer.optimizer.stateless_apply(
        optimizer_values, [gradients[i] for i in positions],
        [trainable[i] for i in positions])
    trainable = list(trainable)
    for position, value in zip(positions, applied):
        trainable[position] = value

    with keras.StatelessScope(
            state_mapping=list(zip(trainer.metrics_variables, metric_values))) as scope:
        logs = trainer.update_trackers(loss, terms, gaze_cm, probs)
    metric_values = _values_after(scope, trainer.metrics_variables, metric_values)
    return logs, (trainable, non_trainable, optimizer_values, metric_values)


def test_step(trainer, state, data):
    """One stateless validation step: `trainer.test_logs` on the state.

    Args:
        trainer: `GazeTrainer` on the JAX backend.
        state: `(trainable, non_trainable, metrics)` value lists.
        data: `(inputs, gaze_cm)` batch.

    Returns:
        `(logs, state)`.
    """
    trainable, non_trainable, metric_values = state
    variables = (trainer.trainable_variables + trainer.non_trainable_variables
                 + trainer.metrics_variables)
    values = list(trainable) + list(non_trainable) + list(metric_values)
    with keras.StatelessScope(state_mapping=list(zip(variables, values))) as scope:
        logs = trainer.test_logs(data)
    return logs, (trainable,
                  _values_after(scope, trainer.non_trainable_variables, non_trainable),
                  _values_after(scope, trainer.metrics_variables, metric_values))


def make_train_function(trainer):
    """The function `fit` calls per step: `(state, iterator) -> (logs, state)`.

    Compiled with `jax.jit` unless the trainer runs eagerly or was compiled
    with `jit_compile=False`; the teachers' current values are passed in at
    every call (a new number of teachers traces the step again).
    """
    step = functools.partial(train_step, trainer)
    if not trainer.run_eagerly and trainer.jit_compile:
        step = jax.jit(step, donate_argnums=0)

    def with_teachers(state, data):
        return step(state, teacher_values(trainer), data)

    return trainer._make_function(with_teachers)

"""Adam that can restart the moments of single weights, as for new weights.

A rebirth (`rebirth.apply_rebirth`) gives some filters, or with `scratch`
the whole network, new values in the middle of a run. Plain Adam offers
one way to forget their past: zero their moments. Its bias correction,
though, follows the optimizer's global step `t`, and for a large `t`
it no longer scales zeroed moments up, so the first update of a zeroed
weight is not `lr * g / |g|`, as for a new weight, but
`lr * (1 - beta_1) * g / sqrt((1 - beta_2) * g**2)`, about 3.2 times the
learning rate, and about 6 times it after ten steps, decaying slowly
(`docs/interpretation.md`, "Optimizer state at a rebirth").

`RebirthAdam` keeps, for every element of every trained variable, the
step at which its moments were last restarted (`birth`, 0 at the start)
and corrects the bias with the element's own age `t + 1 - birth`. Until a
restart it computes what `keras.optimizers.Adam` computes, to the last bit,
so that runs with and without it stay paired up to the first rebirth.
"""

import keras
import numpy as np
from keras import ops


def fill_channels(variable, indices, value):
    """Sets `variable` to `value` on the channels `indices` of its last axis
    (everywhere for None)."""
    array = np.array(variable)
    if indices is None:
        array[...] = value
    else:
        array[..., np.asarray(indices, int)] = value
    variable.assign(array)


class RebirthAdam(keras.optimizers.Adam):
    """Adam whose moments can restart per element (`restart_moments`).

    Takes the arguments of `keras.optimizers.Adam` (with `weight_decay`, it
    is AdamW), except `amsgrad`.

    Example:

    Late in a run (step 10,000), a weight's moments are zeroed: plain Adam
    then moves it by 3.2 times the learning rate, `RebirthAdam` by the
    learning rate, as it moves a new weight.

    >>> import keras, numpy as np
    >>> from tat_keras.training.rebirth import reset_optimizer_state
    >>> def first_step_after_reset(adam):
    ...     kernel = keras.Variable(np.zeros((1, 2), "float32"))
    ...     adam.build([kernel])
    ...     adam.iterations.assign(10_000)
    ...     reset_optimizer_state(adam, kernel)
    ...     _ = adam.apply_gradients([(np.ones((1, 2), "float32"), kernel)])
    ...     return (-np.asarray(kernel, "float64")).round(3).tolist()
    >>> first_step_after_reset(keras.optimizers.Adam(learning_rate=0.1))
    [[0.316, 0.316]]
    >>> first_step_after_reset(RebirthAdam(learning_rate=0.1))
    [[0.1, 0.1]]
    """

    def __init__(self, *args, amsgrad=False, name="rebirth_adam", **kwargs):
        if amsgrad:
            raise ValueError("RebirthAdam does not support amsgrad=True; use "
                             "keras.optimizers.Adam for AMSGrad.")
        super().__init__(*args, amsgrad=False, name=name, **kwargs)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._births = self.add_optimizer_variables(var_list, "birth")

    def restart_moments(self, variable, indices=None):
        """Zeroes the moments of `variable` (all of them, or the channels
        `indices` along its last axis) and restarts their bias correction
        at the current step. A variable it does not train is left alone."""
        if not self.built:
            return
        try:
            index = self._get_variable_index(variable)
        except KeyError:
            return
        step = float(np.asarray(self.iterations))
        for slots, value in ((self._momentums, 0.0), (self._velocities, 0.0),
                             (self._births, step)):
            fill_channels(slots[index], indices, value)

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        gradient = ops.cast(gradient, dtype)
        birth = self._births[index]
        # Each element's own step count since its moments (re)started. The
        # vectorized power rounds differently from the scalar one in the last
        # bit; elements never restarted take Adam's scalar power, so that
        # until a rebirth the run is Adam's to the last bit.
        step = ops.cast(self.iterations + 1, dtype)
        local_step = step - birth
        never = ops.equal(birth, 0)
        beta_1_power = ops.where(
            never, ops.power(ops.cast(self.beta_1, dtype), step),
            ops.power(ops.cast(self.beta_1, dtype), local_step))
        beta_2_power = ops.where(
            never, ops.power(ops.cast(self.beta_2, dtype), step),
            ops.power(ops.cast(self.beta_2, dtype), local_step))
        m = self._momentums[index]
        v = self._velocities[index]
        alpha = lr * ops.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        self.assign_add(m, ops.multiply(ops.subtract(gradient, m), 1 - self.beta_1))
        self.assign_add(
            v, ops.multiply(ops.subtract(ops.square(gradient), v), 1 - self.beta_2))
        self.assign_sub(
            variable,
            ops.divide(ops.multiply(m, alpha), ops.add(ops.sqrt(v), self.epsilon)))

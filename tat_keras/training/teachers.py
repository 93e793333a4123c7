"""The teacher list of random knowledge distillation (Algorithm 1).

At the end of every mini-generation the student's weights join the list as
a teacher. Teachers are kept as NumPy arrays in host memory and on disk, off
the training path: only the teacher drawn for the current epoch is loaded
into a (non-trainable) model that the train step calls.

Readings (docs/interpretation.md): a teacher is drawn once per epoch; the first
mini-generation has none; a teacher whose validation error is above
`threshold` times the best teacher's is dropped; `mean` averages the bin
probabilities of every teacher.
"""

import os

import numpy as np

TEACHER_POLICIES = ("random", "last", "mean", "best", "none")


class TeacherBank:
    """Teachers as weights, with the paper's selection policies (Table 2).

    Args:
        policy: str. `random` (the paper's RKD), `last` (snapshot
            distillation's teacher), `mean` (mean probabilities of all
            teachers), `best` (lowest validation error) or `none` (no
            teacher: the "Finetune" row).
        threshold: float or None. Drop teachers whose validation error is
            above `threshold` times the best teacher's; None keeps all.
        seed: int. Seed of the random draw; the draw of an epoch depends
            only on `(seed, epoch)`, so a resumed run draws the same teacher.

    Example:

    >>> bank = TeacherBank("best")
    >>> bank.add([np.zeros(2)], val_error=2.0, generation=0)
    >>> bank.add([np.ones(2)], val_error=1.5, generation=1)
    >>> bank.draw(epoch=5)
    [1]
    """

    def __init__(self, policy="random", threshold=1.05, seed=0):
        if policy not in TEACHER_POLICIES:
            raise ValueError(
                f"policy must be one of {TEACHER_POLICIES}. Received: policy={policy!r}"
            )
        if threshold is not None and threshold < 1.0:
            raise ValueError(
                "threshold multiplies the best teacher's error and must be >= 1 "
                f"(or None to keep every teacher). Received: threshold={threshold}"
            )
        self.policy = policy
        self.threshold = threshold
        self.seed = int(seed)
        self.entries = []

    def __len__(self):
        return len(self.entries)

    def add(self, weights, val_error, generation):
        """Adds a teacher (a list of arrays, as from `model.get_weights()`)."""
        if self.policy == "none":
            return
        self.entries.append(
            {
                "generation": int(generation),
                "val_error": float(val_error),
                "weights": [np.array(w, copy=True) for w in weights],
            }
        )

    def drop_weak(self):
        """Drops teachers above the error threshold; returns their generations."""
        if self.threshold is None or not self.entries:
            return []
        best = min(entry["val_error"] for entry in self.entries)
        keep, dropped = [], []
        for entry in self.entries:
            if np.isfinite(entry["val_error"]) and (
                entry["val_error"] <= self.threshold * best
            ):
                keep.append(entry)
            else:
                dropped.append(entry["generation"])
        self.entries = keep
        return dropped

    def draw(self, epoch):
        """Indices of the teachers that supervise `epoch` (empty: none)."""
        if not self.entries or self.policy == "none":
            return []
        if self.policy == "last":
            return [len(self.entries) - 1]
        if self.policy == "best":
            return [int(np.argmin([e["val_error"] for e in self.entries]))]
        if self.policy == "mean":
            return list(range(len(self.entries)))
        rng = np.random.default_rng([self.seed, int(epoch)])
        return [int(rng.integers(len(self.entries)))]

    def weights(self, index):
        return self.entries[index]["weights"]

    def describe(self, indices):
        """Generations of the teachers at `indices` (for the run's record)."""
        return [self.entries[i]["generation"] for i in indices]

    # Persistence: one immutable .npz per teacher; the index (which
    # teachers are in the list) belongs to the checkpoint that refers to it.

    def save(self, directory):
        """Writes teachers not yet on disk; returns the index to keep."""
        os.makedirs(directory, exist_ok=True)
        index = []
        for entry in self.entries:
            name = f"teacher_generation{entry['generation']}.npz"
            path = os.path.join(directory, name)
            if not entry.get("saved"):
                temp = os.path.join(directory, f".{name}.tmp")
                with open(temp, "wb") as f:
                    np.savez(f, *entry["weights"])
                os.replace(temp, path)
                entry["saved"] = True
            index.append({"generation": entry["generation"],
                          "val_error": entry["val_error"], "file": name})
        return index

    def load(self, directory, index):
        """Restores the teacher list from `directory` and a saved `index`."""
        self.entries = []
        for item in index:
            with np.load(os.path.join(directory, item["file"])) as arrays:
                weights = [arrays[f"arr_{i}"] for i in range(len(arrays.files))]
            self.entries.append({"generation": item["generation"],
                                 "val_error": item["val_error"], "weights": weights,
                                 "saved": True})

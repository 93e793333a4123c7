"""Training: the Eq. 9 train step, teachers, mini-generations, checkpoints."""

from tat_keras.training.checkpoint import RunCheckpoint
from tat_keras.training.experiment import TrainConfig
from tat_keras.training.experiment import train
from tat_keras.training.generations import GenerationRecord
from tat_keras.training.generations import MiniGenerations
from tat_keras.training.rebirth import apply_rebirth
from tat_keras.training.schedules import RestartingCosineDecay
from tat_keras.training.teachers import TeacherBank
from tat_keras.training.trainer import GazeTrainer

"""Data: synthetic teacher streams, mnist1d, local-file loaders and deterministic batching."""

from ._dataset import Dataset as Dataset
from ._dataset import one_hot as one_hot
from ._factory import DATASETS as DATASETS
from ._factory import FILE_DATASETS as FILE_DATASETS
from ._factory import load_dataset as load_dataset
from .batching import batch_indices as batch_indices
from .batching import epoch_batches as epoch_batches
from .batching import epoch_permutation as epoch_permutation
from .batching import num_batches as num_batches
from .files import ENV_VAR as ENV_VAR
from .files import load_cifar5m as load_cifar5m
from .files import load_cifar10 as load_cifar10
from .files import load_mnist as load_mnist
from .files import read_idx as read_idx
from .files import resolve_data_dir as resolve_data_dir
from .mnist1d import mnist1d as mnist1d
from .synthetic import LINKS as LINKS
from .synthetic import TASKS as TASKS
from .synthetic import SingleIndexTask as SingleIndexTask
from .synthetic import StaircaseTask as StaircaseTask
from .synthetic import Task as Task
from .synthetic import TeacherTask as TeacherTask
from .synthetic import fixed_set as fixed_set
from .synthetic import make_task as make_task
from .synthetic import online_batch as online_batch

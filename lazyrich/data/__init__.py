"""Data: synthetic teacher streams, mnist1d, local-file loaders and deterministic batching."""

from ._batching import batch_indices as batch_indices
from ._batching import epoch_batches as epoch_batches
from ._batching import epoch_permutation as epoch_permutation
from ._batching import num_batches as num_batches
from ._dataset import Dataset as Dataset
from ._dataset import one_hot as one_hot
from ._factory import DATASETS as DATASETS
from ._factory import FILE_DATASETS as FILE_DATASETS
from ._factory import load_dataset as load_dataset
from ._files import ENV_VAR as ENV_VAR
from ._files import load_cifar5m as load_cifar5m
from ._files import load_cifar10 as load_cifar10
from ._files import load_mnist as load_mnist
from ._files import read_idx as read_idx
from ._files import resolve_data_dir as resolve_data_dir
from ._mnist1d import mnist1d as mnist1d
from ._synthetic import LINKS as LINKS
from ._synthetic import TASKS as TASKS
from ._synthetic import SingleIndexTask as SingleIndexTask
from ._synthetic import StaircaseTask as StaircaseTask
from ._synthetic import Task as Task
from ._synthetic import TeacherTask as TeacherTask
from ._synthetic import fixed_set as fixed_set
from ._synthetic import make_task as make_task
from ._synthetic import online_batch as online_batch

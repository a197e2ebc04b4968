"""Results on disk: xarray Datasets as netCDF, JSON summaries, atomic writes, resumable chunks."""

from .store import StudyDir as StudyDir
from .store import atomic_write_bytes as atomic_write_bytes
from .store import read_dataset as read_dataset
from .store import read_json as read_json
from .store import write_dataset as write_dataset
from .store import write_json as write_json

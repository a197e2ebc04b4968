"""Results on disk: xarray Datasets as netCDF, JSON summaries, atomic writes, resumable chunks,
one writer per study directory."""

from ._chunks import ChunkWarning as ChunkWarning
from ._lock import StudyLock as StudyLock
from ._store import StorageError as StorageError
from ._store import StudyDir as StudyDir
from ._store import atomic_write_bytes as atomic_write_bytes
from ._store import read_dataset as read_dataset
from ._store import read_json as read_json
from ._store import storage_error as storage_error
from ._store import write_dataset as write_dataset
from ._store import write_json as write_json

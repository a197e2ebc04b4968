"""Models: batched Equinox networks with `standard`, `ntk` and `mup` parameterizations, and
the adapter that runs any per-example Equinox module on a batch (`per_example`, `convention`)."""

from ._activations import ACTIVATIONS as ACTIVATIONS
from ._activations import activation as activation
from ._cnn import CNN as CNN
from ._cnn import Conv as Conv
from ._dense import PARAMETERIZATIONS as PARAMETERIZATIONS
from ._dense import Dense as Dense
from ._frozen import Apply as Apply
from ._frozen import Frozen as Frozen
from ._frozen import functional as functional
from ._frozen import param_count as param_count
from ._frozen import partition as partition
from ._mlp import MLP as MLP
from ._paper_cnn import PaperCNN as PaperCNN
from ._per_example import Batched as Batched
from ._per_example import PerExample as PerExample
from ._per_example import batch_call as batch_call
from ._per_example import batched as batched
from ._per_example import convention as convention
from ._per_example import per_example as per_example
from ._revmlp import RevBlock as RevBlock
from ._revmlp import RevMLP as RevMLP
from ._scaled import Scaled as Scaled
from ._scaled import scaled as scaled

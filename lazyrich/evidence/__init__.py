"""Claims, margins, intervals over seeds, the one verdict rule, plans and `verify`.

For a theory-versus-experiment claim of your own:

```python
from lazyrich import evidence

claim = evidence.Claim(
    id="eta_rich", paper="Atanasov et al. 2024", claim="η* ∝ γ^(2/L) for γ ≫ 1 (L = 3)",
    theory=2 / 3, margin=0.08, reason="half the gap 2/3 − 1/2 to the L = 4 prediction",
)
row = evidence.judge(claim, per_seed_slopes)  # one fitted slope per seed
row["verdict"], row["measured"]               # "agrees" | "disagrees" | "undecided"
```

The rule (see `Claim`): **agrees** if the 90% interval over the units lies inside
theory ± margin, **disagrees** if entirely outside, **undecided** otherwise. Intervals run over
the unit of replication (the seed): Student t, or a bootstrap over units.
"""

from ._claims import KINDS as KINDS
from ._claims import SMOKE_SENTENCE as SMOKE_SENTENCE
from ._claims import VERDICTS as VERDICTS
from ._claims import Claim as Claim
from ._claims import judge as judge
from ._claims import measure as measure
from ._claims import seeds_to_decide as seeds_to_decide
from ._claims import verdict as verdict
from ._intervals import ESTIMATORS as ESTIMATORS
from ._intervals import Measured as Measured
from ._intervals import bootstrap_interval as bootstrap_interval
from ._intervals import interval as interval
from ._intervals import t_interval as t_interval
from ._plan import committed_at as committed_at
from ._plan import plan_sha256 as plan_sha256
from ._plan import preregistered as preregistered
from ._plan import provenance as provenance
from ._plan import read_plan as read_plan
from ._plan import write_plan as write_plan
from ._verify import UNITS_FILE as UNITS_FILE
from ._verify import StudyCheck as StudyCheck
from ._verify import read_units as read_units
from ._verify import verify as verify
from ._verify import verify_study as verify_study
from ._verify import write_units as write_units

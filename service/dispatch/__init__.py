"""The dispatcher: claims pending trials, runs them in batches, writes their results.

- ``loop``: the :class:`Dispatcher` (one round: claim → batch → submit → collect →
  persist, leases, cancels, progress, replica reconciling);
- ``batching``: pure grouping of claimed trials into batches;
- ``theory_ledger``: which batch computes which shared replica value;
- ``failures``: the split / retry / fail policy;
- ``writes``: store writes retried with backoff, never lost;
- ``progress``: progress reports and hard time limits;
- ``runner``: the :class:`BatchRunner` protocol both runners implement.
"""

from service.dispatch.batching import Batch, batch_size_for, gpus_for, group_into_batches
from service.dispatch.loop import Dispatcher
from service.dispatch.runner import BatchRunner

__all__ = ["Batch", "BatchRunner", "Dispatcher", "batch_size_for", "gpus_for", "group_into_batches"]

"""Which batch computes which replica value, so that none is computed twice and none is
lost.

The replica prediction of a parameter set (its theory key) is shared by every seed and
every D of it, so the dispatcher asks only one in-flight batch to compute it
(:meth:`TheoryLedger.assign`); trials of that key that finish first in other batches are
stored without it and get it by backfill when it lands.  Whenever a batch ends without
landing its keys — it failed, was split, requeued, cancelled, killed past its hard
limit, or its persist gave up — :meth:`release` frees them, and the next batch that
needs a key computes it.  Trials that already finished without the value are found in
the store by :meth:`orphans_to_compute` (``store.trials.missing_theory``) and computed
by a theory-only batch, also after a dispatcher restart, since the store is the record.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from workers.records import ClaimedTrial


class TheoryLedger:
    """Theory keys owned by in-flight batches, and keys that keep failing."""

    def __init__(self, max_failures: int) -> None:
        self._owner: dict[str, int] = {}
        self._failures: Counter[str] = Counter()
        self.max_failures = max_failures

    @property
    def inflight_keys(self) -> set[str]:
        return set(self._owner)

    def assign(
        self,
        trials: Sequence[ClaimedTrial],
        stored: Mapping[str, float | None],
        *,
        always: bool,
    ) -> dict[int, str]:
        """``{trial id: theory key}`` a new batch should compute: keys neither stored nor
        owned by another batch (every key when ``always``, the theory *is* the result).

        Ownership is recorded under the batch id given later to :meth:`own`.
        """
        wanted: dict[int, str] = {}
        claimed_here: set[str] = set()
        for trial in trials:
            key = trial.theory_key
            if not key:
                continue
            free = key not in stored and key not in self._owner and key not in claimed_here
            if always or free:
                wanted[trial.trial_id] = key
                if free:
                    claimed_here.add(key)
        return wanted

    def own(self, batch_id: int, keys: Iterable[str]) -> None:
        """Record ``batch_id`` as the computer of each key nobody owns yet."""
        for key in keys:
            self._owner.setdefault(key, batch_id)

    def transfer(self, old: int, new: int, keys: Iterable[str]) -> None:
        """A split batch hands its keys to the part that now computes them."""
        for key in keys:
            if self._owner.get(key) == old:
                self._owner[key] = new

    def landed(self, keys: Iterable[str]) -> None:
        """These keys' values are stored: nobody computes them any more."""
        for key in keys:
            self._owner.pop(key, None)
            self._failures.pop(key, None)

    def release(self, batch_id: int, *, failed: bool = False) -> set[str]:
        """Free every key ``batch_id`` owned (it ended without storing them); returns them.

        ``failed`` counts a failure against each key, so a key whose computation keeps
        raising stops being retried after ``max_failures``.
        """
        freed = {key for key, owner in self._owner.items() if owner == batch_id}
        for key in freed:
            del self._owner[key]
            if failed:
                self._failures[key] += 1
        return freed

    def given_up(self) -> set[str]:
        """Keys that failed ``max_failures`` times; they are left out of reconciling."""
        return {key for key, count in self._failures.items() if count >= self.max_failures}

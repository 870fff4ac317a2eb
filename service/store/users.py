"""Users, API keys and quota counters.  Rows stay here: callers get wire schemas or a
:class:`~service.auth.principal.Principal`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from api_schemas.auth import KeyCreated, KeyRead, Quotas, UserRead
from api_schemas.statuses import TrialStatus
from service.auth import keys
from service.auth.principal import Principal
from service.errors import Conflict, NotFound
from service.store.clock import as_utc as _utc
from service.store.models import ApiKey, Sweep, Trial, User

# last_used_at is written at most this often per key: a write per request would cost
# more than the rest of authentication together (and serialize requests on SQLite).
LAST_USED_RESOLUTION = timedelta(seconds=60)


def _read(user: User) -> UserRead:
    return UserRead(
        id=user.id,
        name=user.name,
        kind=user.kind,
        admin=user.is_admin,
        disabled=user.disabled,
        share=user.share,
        usage=user.usage,
        quotas=Quotas(
            max_queued_trials=user.max_queued_trials,
            max_running_trials=user.max_running_trials,
            gpu_seconds_per_window=user.gpu_seconds_per_window,
        ),
        created_at=_utc(user.created_at),
    )


def ensure_user(session: Session, name: str, *, share: float, kind: str = "local") -> None:
    """A row for ``name`` (a submitter with auth off); an existing row is kept as is."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(
        insert(User)
        .values(
            id=uuid.uuid4().hex,
            name=name,
            kind=kind,
            is_admin=False,
            disabled=False,
            share=share,
            usage=0.0,
            created_at=datetime.now(UTC),
        )
        .on_conflict_do_nothing(index_elements=["name"])
    )


def create_user(
    session: Session, name: str, *, kind: str, admin: bool, share: float, quotas: Quotas
) -> UserRead:
    if session.scalar(select(User.id).where(User.name == name)) is not None:
        raise Conflict(f"a user named {name!r} exists")
    user = User(
        id=uuid.uuid4().hex,
        name=name,
        kind=kind,
        is_admin=admin,
        disabled=False,
        share=share,
        usage=0.0,
        max_queued_trials=quotas.max_queued_trials,
        max_running_trials=quotas.max_running_trials,
        gpu_seconds_per_window=quotas.gpu_seconds_per_window,
        created_at=datetime.now(UTC),
    )
    session.add(user)
    session.flush()
    return _read(user)


def _user(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound(f"no user named {name!r}")
    return user


def get_user(session: Session, name: str) -> UserRead:
    return _read(_user(session, name))


def list_users(session: Session) -> list[UserRead]:
    return [_read(user) for user in session.scalars(select(User).order_by(User.name))]


def update_user(
    session: Session,
    name: str,
    *,
    admin: bool | None,
    disabled: bool | None,
    share: float | None,
    quotas: Quotas | None,
) -> UserRead:
    user = _user(session, name)
    if admin is not None:
        user.is_admin = admin
    if disabled is not None:
        user.disabled = disabled
    if share is not None:
        user.share = share
    if quotas is not None:
        user.max_queued_trials = quotas.max_queued_trials
        user.max_running_trials = quotas.max_running_trials
        user.gpu_seconds_per_window = quotas.gpu_seconds_per_window
    session.flush()
    return _read(user)


def _key_read(key: ApiKey, user_name: str) -> KeyRead:
    return KeyRead(
        id=key.id,
        user=user_name,
        prefix=key.prefix,
        label=key.label,
        scopes=list(key.scopes),
        created_at=_utc(key.created_at),
        expires_at=_utc(key.expires_at),
        revoked_at=_utc(key.revoked_at),
        last_used_at=_utc(key.last_used_at),
    )


def create_key(
    session: Session, user_name: str, *, scopes: list[str], label: str, lifetime: timedelta
) -> KeyCreated:
    """A new key for the user; the response is the only place the key ever appears."""
    user = _user(session, user_name)
    new = keys.generate_key()
    now = datetime.now(UTC)
    key = ApiKey(
        id=uuid.uuid4().hex,
        user_id=user.id,
        prefix=new.prefix,
        secret_hash=new.secret_hash,
        label=label,
        scopes=sorted(set(scopes)),
        created_at=now,
        expires_at=now + lifetime,
    )
    session.add(key)
    session.flush()
    return KeyCreated(**_key_read(key, user.name).model_dump(), key=new.secret)


def list_keys(session: Session, user_name: str | None) -> list[KeyRead]:
    statement = select(ApiKey, User.name).join(User, User.id == ApiKey.user_id)
    if user_name is not None:
        statement = statement.where(User.name == user_name)
    rows = session.execute(statement.order_by(ApiKey.created_at))
    return [_key_read(key, name) for key, name in rows]


def key_owner(session: Session, key_id: str) -> str:
    name = session.scalar(
        select(User.name).join(ApiKey, ApiKey.user_id == User.id).where(ApiKey.id == key_id)
    )
    if name is None:
        raise NotFound(f"no key with id {key_id!r}")
    return name


def revoke_key(session: Session, key_id: str) -> KeyRead:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"no key with id {key_id!r}")
    if key.revoked_at is None:
        key.revoked_at = datetime.now(UTC)
        session.flush()
    return _key_read(key, key_owner(session, key_id))


@dataclass(frozen=True)
class Rejected:
    """Why a presented key does not authenticate (it goes into the audit log)."""

    reason: str


def authenticate(session: Session, presented: str) -> Principal | Rejected:
    """The principal a presented key stands for, or why it does not."""
    prefix = keys.parse_prefix(presented)
    if prefix is None:
        return Rejected("malformed key")
    row = session.execute(
        select(ApiKey, User).join(User, User.id == ApiKey.user_id).where(ApiKey.prefix == prefix)
    ).first()
    if row is None or not keys.matches(presented, row.ApiKey.secret_hash):
        return Rejected("unknown key")
    key, user = row.ApiKey, row.User
    now = datetime.now(UTC)
    if key.revoked_at is not None:
        return Rejected(f"key {prefix} was revoked")
    if key.expires_at is not None and _utc(key.expires_at) <= now:
        return Rejected(f"key {prefix} expired")
    if user.disabled:
        return Rejected(f"user {user.name} is disabled")
    last = _utc(key.last_used_at)
    if last is None or now - last > LAST_USED_RESOLUTION:
        session.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))
    scopes = keys.expand_scopes(key.scopes)
    if not user.is_admin:
        scopes = scopes - {"admin"}
    return Principal(
        user_id=user.id,
        name=user.name,
        kind=user.kind,
        is_admin=user.is_admin and "admin" in scopes,
        scopes=scopes,
        key_prefix=prefix,
    )


def _trials_in(session: Session, owner: str, status: TrialStatus) -> int:
    """How many of the owner's trials are in ``status`` (index ``ix_trials_fair_claim``)."""
    statement = select(func.count()).select_from(Trial)
    statement = statement.where(Trial.status == status.value, Trial.owner == owner)
    return session.scalar(statement) or 0


def queued_trials(session: Session, owner: str) -> int:
    return _trials_in(session, owner, TrialStatus.PENDING)


def running_trials(session: Session, owner: str) -> int:
    return _trials_in(session, owner, TrialStatus.RUNNING)


def requested_gpu_seconds(
    session: Session, owner: str, since: datetime
) -> list[tuple[datetime, float]]:
    """(created_at, requested GPU-seconds) of the owner's sweeps since ``since``, oldest first."""
    rows = session.execute(
        select(Sweep.created_at, Sweep.requested_gpu_seconds)
        .where(Sweep.submitter == owner, Sweep.created_at >= since, Sweep.requested_gpu_seconds > 0)
        .order_by(Sweep.created_at)
    )
    return [(_utc(at), seconds) for at, seconds in rows]


def user_row_facts(session: Session, name: str) -> UserRead | None:
    user = session.scalar(select(User).where(User.name == name))
    return _read(user) if user is not None else None

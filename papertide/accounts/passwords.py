"""Password hashing with argon2id (argon2-cffi), and the password rules."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from papertide.errors import InvalidInput

MIN_LENGTH = 10
MAX_LENGTH = 1024  # argon2 takes any length; a cap stops multi-megabyte "passwords"
_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verified against when a username does not exist, so both cases take the same time.
_DUMMY_HASH = _hasher.hash("papertide-timing-equaliser")


def check_password_rules(password: str, *, username: str = "", email: str = "") -> None:
    if len(password) < MIN_LENGTH:
        raise InvalidInput(f"the password must have at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise InvalidInput(f"the password must have at most {MAX_LENGTH} characters")
    lowered = password.lower()
    for identity in (username, email.split("@")[0]):
        if identity and len(identity) >= 3 and identity.lower() in lowered:
            raise InvalidInput("the password must not contain your username or email")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; constant work whether or not the user exists."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)

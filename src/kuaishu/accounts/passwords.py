"""Password hashing (Argon2id via argon2-cffi) and the password policy."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from kuaishu.errors import ValidationFailed
from kuaishu.i18n import _
from kuaishu.settings import get_settings

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


# A hash to verify against when the user does not exist, so timing does not reveal usernames.
DUMMY_HASH = _hasher.hash("kuaishu-no-such-user")


def check_policy(password: str, *, username: str) -> None:
    """Refuse weak passwords with a message saying which rule failed."""
    minimum = get_settings().password_min_length
    problems: list[str] = []
    if len(password) < minimum:
        problems.append(_("至少 {n} 个字符", n=minimum))
    classes = sum(
        [
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        ]
    )
    if classes < 3:
        problems.append(_("包含大写字母、小写字母、数字、符号中的至少三类"))
    if username and username.lower() in password.lower():
        problems.append(_("不能包含用户名"))
    if problems:
        raise ValidationFailed(
            "密码不符合要求：{rules}。",
            code="weak_password",
            details={"field": "password", "rules": problems},
            rules=_("；").join(problems),
        )

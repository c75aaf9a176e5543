"""The room's accounts: one per participant and one for the instructor, each with a random password.

`sudo make workshop PARTICIPANTS=30` makes them (p01 ... p30, or the names given) the first time
and prints the sheet to hand out; later runs keep every password that exists and add only new
participants. The hub never sees a password in the clear: accounts.json keeps a salted scrypt hash
of each, and accounts.txt (mode 600, beside it) the sheet as printed.

    participants("30")            # ['p01', ..., 'p30']
    participants("ana, ben")      # ['ana', 'ben']  (a name that is not valid raises BadInput)
    Accounts(state_dir).ensure(names)   # → the sheet's text
    ListAuthenticator                   # the hub's authenticator over accounts.json

Standard library only, except ListAuthenticator (it needs jupyterhub, in the hub's virtualenv).
"""
import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from pathlib import Path

INSTRUCTOR = "instructor"
MAX_PARTICIPANTS = 200
NAME = re.compile(r"[a-z][a-z0-9-]{0,30}[a-z0-9]|[a-z]")
ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"      # nothing that reads as another character


class BadInput(ValueError):
    """Input the instructor has to correct: the message says what and how."""


def participants(spec):
    """The participants' names from PARTICIPANTS: a number N (p01 ... pN) or names separated by
    commas or spaces."""
    spec = (spec or "").strip()
    if not spec:
        raise BadInput("PARTICIPANTS is empty: give a number (PARTICIPANTS=30 makes p01 ... p30) "
                       "or names (PARTICIPANTS=ana,ben)")
    if spec.isdigit():
        n = int(spec)
        if not 1 <= n <= MAX_PARTICIPANTS:
            raise BadInput(f"PARTICIPANTS={n}: give from 1 to {MAX_PARTICIPANTS} participants")
        width = max(2, len(str(n)))
        return [f"p{i:0{width}d}" for i in range(1, n + 1)]
    names = [n for n in re.split(r"[\s,]+", spec) if n]
    for name in names:
        if not NAME.fullmatch(name):
            raise BadInput(
                f"{name!r} is not a valid participant name: use 1 to 32 lowercase letters, digits "
                "and '-', starting with a letter and not ending with '-' (it names the "
                "participant's container and volume too)")
        if name == INSTRUCTOR:
            raise BadInput(f"{name!r} is the instructor's account: choose another participant name")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise BadInput(f"participant names given twice: {', '.join(twice)}")
    if len(names) > MAX_PARTICIPANTS:
        raise BadInput(f"{len(names)} participants: at most {MAX_PARTICIPANTS}")
    return names


def password(length=12):
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def hash_password(text, salt=None):
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(text.encode(), salt=salt, n=2 ** 14, r=8, p=1, dklen=32)
    return {"salt": base64.b64encode(salt).decode(), "scrypt": base64.b64encode(digest).decode()}


def check_password(text, stored):
    try:
        salt = base64.b64decode(stored["salt"])
        want = base64.b64decode(stored["scrypt"])
    except (KeyError, TypeError, ValueError):
        return False
    got = hashlib.scrypt(text.encode(), salt=salt, n=2 ** 14, r=8, p=1, dklen=32)
    return hmac.compare_digest(got, want)


def _write(path, text, mode):
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


class Accounts:
    """accounts.json (hashes) and accounts.txt (the sheet) in the workshop's state directory."""

    def __init__(self, state_dir):
        self.dir = Path(state_dir)
        self.file = self.dir / "accounts.json"
        self.sheet = self.dir / "accounts.txt"

    def load(self):
        try:
            data = json.loads(self.file.read_text())
        except FileNotFoundError:
            return {}
        except ValueError as e:
            raise BadInput(f"{self.file} is not valid JSON ({e}): move it away to make new accounts")
        return data.get("accounts", {}) if isinstance(data, dict) else {}

    def ensure(self, names, instructor_password=None):
        """Accounts for exactly `names` and the instructor: existing passwords are kept, new ones
        drawn. Returns the sheet (every account with its password) and writes it to accounts.txt."""
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        stored = self.load()
        clear = self._sheet_passwords()
        accounts, sheet = {}, {}
        for name in [INSTRUCTOR, *names]:
            given = instructor_password if name == INSTRUCTOR else None
            if given:
                accounts[name], sheet[name] = hash_password(given), given
            elif name in stored and name in clear and check_password(clear[name], stored[name]):
                accounts[name], sheet[name] = stored[name], clear[name]
            else:
                sheet[name] = password()
                accounts[name] = hash_password(sheet[name])
        _write(self.file, json.dumps({"accounts": accounts}, indent=1, sort_keys=True), 0o600)
        width = max(len(n) for n in sheet)
        text = "\n".join(f"{n:<{width}}  {p}" for n, p in sheet.items()) + "\n"
        _write(self.sheet, text, 0o600)
        return text

    def _sheet_passwords(self):
        try:
            lines = self.sheet.read_text().splitlines()
        except FileNotFoundError:
            return {}
        return dict(line.split(None, 1) for line in lines if len(line.split()) == 2)


try:
    from jupyterhub.auth import Authenticator
    from traitlets import Unicode
except ImportError:          # the pure parts above are used without jupyterhub too
    Authenticator = None

if Authenticator is not None:
    class ListAuthenticator(Authenticator):
        """Signs in the accounts of accounts.json, each with its own password (read at each
        sign-in, so new accounts need no restart of the hub)."""

        accounts_file = Unicode(help="accounts.json written by accounts.py").tag(config=True)

        async def authenticate(self, handler, data):
            name = (data.get("username") or "").strip().lower()
            try:
                stored = json.loads(Path(self.accounts_file).read_text())["accounts"]
            except (OSError, ValueError, KeyError) as e:
                self.log.error("xdplab workshop: cannot read %s: %s", self.accounts_file, e)
                return None
            if name in stored and check_password(data.get("password") or "", stored[name]):
                return name
            return None

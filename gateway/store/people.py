"""People who sign in: operators added from the command line, partners found by their contact
email, single-use sign-in tokens and sessions. Tokens and session ids are kept as hashes only."""

from __future__ import annotations

import json
import time

from redis.client import Pipeline

from gateway.store.base import Records, key, key_hash

BUILT = "built"  # the member that says the email index was built (or filled from the start)


def normal_email(email: str) -> str:
    """An address as the indexes keep it: trimmed, lower case."""
    return email.strip().lower()


class People(Records):
    """Operators, partner contacts by email, sign-in tokens and sessions."""

    # ---- operators added with `flask operators add` ----------------------------------------------

    def add_operator(self, email: str) -> bool:
        """Make the address an operator's; False when it was one already."""
        return bool(self.redis.sadd(key("operators"), normal_email(email)))

    def remove_operator(self, email: str) -> bool:
        """The address is no operator's any longer (OPERATOR_EMAILS aside)."""
        return bool(self.redis.srem(key("operators"), normal_email(email)))

    def operators(self) -> list[str]:
        """The addresses added as operators."""
        return sorted(m.decode() for m in self.redis.smembers(key("operators")))

    def is_added_operator(self, email: str) -> bool:
        """Whether the address was added as an operator."""
        return bool(self.redis.sismember(key("operators"), normal_email(email)))

    # ---- partners by their contact email ---------------------------------------------------------

    @staticmethod
    def index_partner_email(pipe: Pipeline, partner_id: str, email: str) -> None:
        """File a new partner under its contact email, in the caller's transaction."""
        pipe.sadd(key("partners-by-email", normal_email(email)), partner_id)

    def partners_by_email(self, email: str) -> list[str]:
        """Ids of the partners whose contact is this address (the index is built from the
        stored partners the first time it is missing: partners made before it existed)."""
        if not self.redis.sismember(key("partner-email-index"), BUILT):
            self.rebuild_partner_email_index()
        found = self.redis.smembers(key("partners-by-email", normal_email(email)))
        return sorted(m.decode() for m in found)

    def rebuild_partner_email_index(self) -> int:
        """File every stored partner under its contact email; how many were filed."""
        prefix = key("partner", "")
        filed = 0
        with self.redis.pipeline(transaction=False) as pipe:
            for name in self.redis.scan_iter(prefix + "*"):
                raw = self.redis.get(name)
                if raw is None:
                    continue
                stored = json.loads(raw)  # the email is never among the sealed secrets
                if stored.get("email"):
                    self.index_partner_email(pipe, stored["id"], stored["email"])
                    filed += 1
            pipe.sadd(key("partner-email-index"), BUILT)
            pipe.execute()
        return filed

    # ---- sign-in tokens and sessions -------------------------------------------------------------

    def add_signin_token(self, token: str, email: str, seconds: int) -> None:
        """Remember a sign-in token (its hash) for an address, for `seconds`."""
        self.redis.set(key("signin", key_hash(token)), normal_email(email), ex=seconds)

    def signin_token_email(self, token: str) -> str | None:
        """The address a live token was sent to (the token stays usable)."""
        raw = self.redis.get(key("signin", key_hash(token)))
        return raw.decode() if raw else None

    def use_signin_token(self, token: str) -> str | None:
        """The address of a live token, which is used up by this call; None if none."""
        with self.redis.pipeline() as pipe:  # MULTI: of two concurrent uses, one gets it
            pipe.get(key("signin", key_hash(token)))
            pipe.delete(key("signin", key_hash(token)))
            raw, _ = pipe.execute()
        return raw.decode() if raw else None

    def start_session(self, session_id: str, email: str, seconds: int) -> None:
        """A signed-in session for `seconds` at most (never extended)."""
        record = {"email": normal_email(email), "started_at": time.time()}
        self.redis.set(key("session", key_hash(session_id)), json.dumps(record), ex=seconds)

    def session_email(self, session_id: str) -> str | None:
        """The address of a live session, None once it ended or expired."""
        raw = self.redis.get(key("session", key_hash(session_id)))
        return json.loads(raw)["email"] if raw else None

    def end_session(self, session_id: str) -> None:
        """End a session now."""
        self.redis.delete(key("session", key_hash(session_id)))

"""LAB STAND-IN for open_webui.models.users: the `Users` table functions the account script calls."""

from __future__ import annotations

from types import SimpleNamespace

from lab.doubles import openwebui_double as db


def _model(row):
    return SimpleNamespace(**row) if row else None


class _Users:
    def get_user_by_email(self, email: str):
        return _model(db.user_by_email(email))

    def get_user_by_id(self, user_id: str):
        return _model(db.user_by_id(user_id))

    def has_users(self) -> bool:
        return db.user_count() > 0

    def get_num_users(self) -> int:
        return db.user_count()

    def update_user_role_by_id(self, user_id: str, role: str):
        return _model(db.set_role(user_id, role))


Users = _Users()

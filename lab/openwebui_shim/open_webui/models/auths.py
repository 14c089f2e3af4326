"""LAB STAND-IN for open_webui.models.auths: the `Auths` table functions the account script calls,
with Open WebUI 0.6.34's signatures."""

from __future__ import annotations

from types import SimpleNamespace

from lab.doubles import openwebui_double as db


class _Auths:
    def insert_new_auth(self, email: str, password: str, name: str, profile_image_url: str = "/user.png",
                        role: str = "pending", oauth_sub=None):
        row = db.insert_account(email, password, name, role, profile_image_url)
        return SimpleNamespace(**row) if row else None

    def update_user_password_by_id(self, id: str, new_password: str) -> bool:  # noqa: A002 (its name)
        return db.set_password(id, new_password)

    def authenticate_user(self, email: str, password: str):
        row = db.authenticate(email, password)
        return SimpleNamespace(**row) if row else None


Auths = _Auths()

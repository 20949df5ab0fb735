"""Slack's side of the OAuth v2 install flow: the authorize page and `oauth.v2.access`.

A person clicking "Add to Slack" lands on `/oauth/v2/authorize?client_id&scope&state
&redirect_uri`. Real Slack asks them to approve; the fake approves at once on behalf of
`installer` in the workspace `installing_team` and redirects (302) to the app's
redirect URI with `code` and `state`. The app then trades the code for a bot token with
`oauth.v2.access`, authenticated by its client id and secret (HTTP Basic, or form fields).
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlencode

from aiohttp import web

from tests.fakes.slack_state import JSON, ApiCall, Grant, SlackState, TokenKind
from tests.fakes.slack_web import SlackError

CLIENT_ID = "1111111111.2222222222"
CLIENT_SECRET = "fake-client-secret-0123456789"


@dataclass
class IssuedCode:
    code: str
    client_id: str
    team_id: str
    installer: str
    scopes: frozenset[str]
    redirect_uri: str | None
    used: bool = False


@dataclass
class OAuthServer:
    state: SlackState
    installing_team: str
    installer: str
    #: the app's configured Redirect URL, used when the authorize link names none
    redirect_uri: str | None = None
    clients: dict[str, str] = field(default_factory=lambda: {CLIENT_ID: CLIENT_SECRET})
    codes: dict[str, IssuedCode] = field(default_factory=dict)
    installs: list[Grant] = field(default_factory=list)  # bot tokens handed out

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/oauth/v2/authorize", self.authorize_page)]

    def issue_code(
        self,
        scopes: frozenset[str] | set[str],
        *,
        team_id: str | None = None,
        installer: str | None = None,
        client_id: str = CLIENT_ID,
        redirect_uri: str | None = None,
    ) -> str:
        """What approving the install on slack.com does: a one-time code for the app."""
        code = f"{uuid.uuid4().hex[:12]}.{uuid.uuid4().hex}"
        self.codes[code] = IssuedCode(
            code,
            client_id,
            team_id or self.installing_team,
            installer or self.installer,
            frozenset(scopes),
            redirect_uri,
        )
        return code

    async def authorize_page(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        client_id = query.get("client_id", "")
        if client_id not in self.clients:
            return web.Response(status=400, text="invalid_client_id", content_type="text/plain")
        named = query.get("redirect_uri")
        target = named or self.redirect_uri
        if not target:
            return web.Response(status=400, text="bad_redirect_uri", content_type="text/plain")
        scopes = {s for s in query.get("scope", "").split(",") if s}
        # A redirect_uri named here must be named again, identically, in oauth.v2.access.
        code = self.issue_code(scopes, client_id=client_id, redirect_uri=named)
        answer = urlencode({"code": code, "state": query.get("state", "")})
        raise web.HTTPFound(f"{target}{'&' if '?' in target else '?'}{answer}")

    async def oauth_v2_access(self, request: web.Request, call: ApiCall) -> JSON:
        client_id, secret = _client_credentials(request, call.params)
        if client_id is None or client_id not in self.clients:
            raise SlackError("invalid_client_id")
        if secret != self.clients[client_id]:
            raise SlackError("bad_client_secret")
        issued = self.codes.get(str(call.params.get("code") or ""))
        if issued is None or issued.client_id != client_id:
            raise SlackError("invalid_code")
        if issued.used:
            raise SlackError("code_already_used")
        if issued.redirect_uri and call.params.get("redirect_uri") != issued.redirect_uri:
            raise SlackError("bad_redirect_uri")
        issued.used = True
        team = self.state.team(issued.team_id)
        token = f"xoxb-1-{team.id}-{uuid.uuid4().hex[:24]}"
        grant = Grant(token, TokenKind.BOT, team.id, team.bot_user_id, set(issued.scopes))
        self.state.grants[token] = grant
        self.installs.append(grant)
        return {
            "app_id": team.app_id,
            "authed_user": {"id": issued.installer},
            "scope": ",".join(sorted(issued.scopes)),
            "token_type": "bot",
            "access_token": token,
            "bot_user_id": team.bot_user_id,
            "team": {"id": team.id, "name": team.name},
            "enterprise": None,
            "is_enterprise_install": False,
        }


def _client_credentials(request: web.Request, params: JSON) -> tuple[str | None, str | None]:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            client_id, _, secret = base64.b64decode(value).decode().partition(":")
        except ValueError:
            return None, None
        return client_id, secret
    client_id, secret = params.get("client_id"), params.get("client_secret")
    return (
        client_id if isinstance(client_id, str) else None,
        secret if isinstance(secret, str) else None,
    )

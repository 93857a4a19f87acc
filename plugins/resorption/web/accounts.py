"""The account pages: asking for access, deciding, activating, resetting, « Mon compte ».

Public (no account needed): `/demande-acces` (the access request: a honeypot field, a minimum
fill time counted from the start time the form carries (none: a robot) and, in the database,
a per-address (IPv6: per /64) and per-e-mail throttle; a robot gets the same answer as a
person), `/mot-de-passe-oublie`, `/activation/<lien>` and `/reinitialisation/<lien>` (one-time
links mailed by the outbox). Administrators (`manage_users` of the policy):
`/administration/demandes` and `/administration/utilisateurs[/<n°>]`, within their reach only,
every decision audited and shown on the user's page. Every signed-in user: `/charte` (asked
again at sign-in when the version changes) and `/mon-compte` (profile, password, sessions,
API tokens, e-mail subscriptions).

Each page acts through `resorption.lifecycle` as its caller (the account functions check who
acts and where inside the database). A form refused for a mistake is shown again with what
was typed and a French message naming the field.
"""

from __future__ import annotations

import time
from http import HTTPStatus
from typing import Any

from flask import Blueprint, Response, redirect, request

from resorption import lifecycle, throttle
from resorption.authentication import password_hash_of
from resorption.caller import Caller
from resorption.errors import FieldErrors, Forbidden, InvalidParameter, NotFound
from resorption.web.dashboard import base_url, render, signed_in
from resorption.web.sessions import current_session, safe_next, session_hash

# A person takes longer than this to fill the request form; a robot does not.
MIN_FILL_SECONDS = 3
HONEYPOT = "site_web"
TOKEN_DAYS = (30, 90, 180, 365)
# What the audit log's actions about an account say, on the account's page.
ACCOUNT_ACTIONS = {
    "user_created": "Compte créé",
    "user_rights_changed": "Rôle ou options changés",
    "user_deactivated": "Compte désactivé",
    "user_reactivated": "Compte réactivé",
    "account_activated": "Compte activé (charte acceptée, mot de passe choisi)",
    "password_reset": "Mot de passe réinitialisé par courriel",
    "password_changed": "Mot de passe changé",
    "charter_accepted": "Charte acceptée",
    "token_created": "Jeton d'API créé",
    "token_revoked": "Jeton d'API révoqué",
}
AREA_LEVELS = {
    "nation": "nation",
    "region": "région",
    "departement": "département",
    "epci": "EPCI",
    "commune": "commune",
}


def _client() -> str:
    # the key of the sign-in throttle: an IPv6 client counts by its /64, as one address
    return throttle.address_key(request.remote_addr or "inconnu")


def _page(api: Any, template: str, status: int = HTTPStatus.OK, **data: Any) -> Response:
    session = current_session()
    data = {
        "links": [],
        "root": base_url(api),
        "csrf": session.csrf_token if session else "",
        "levels": AREA_LEVELS,
        **data,
    }
    html = render(api, template, data)
    return Response(
        html,
        status=status,
        content_type="text/html; charset=utf-8",
        headers={"Cache-Control": "private, no-store"},
    )


def _departements(caller: Caller) -> list[tuple[str, str]]:
    return lifecycle.departements(caller)


def blueprint(api: Any) -> Blueprint:
    """The account pages, rendered with pygeoapi's templates of `api`."""
    bp = Blueprint("accounts", __name__)

    # -- the public request -----------------------------------------------------------------

    def request_form(
        caller: Caller, status: int = HTTPStatus.OK, wrong: FieldErrors | None = None
    ) -> Response:
        roles = [(n, r.label.fr) for n, r in caller.policy.roles.items()]
        return _page(
            api,
            "comptes/demande.html",
            status,
            # the page lists them on top, and each field shows its own
            wrong=wrong.fields if wrong else {},
            form=request.form,
            roles=roles,
            departements=_departements(caller),
            started=int(time.time()),
            honeypot=HONEYPOT,
        )

    @bp.get("/demande-acces")
    def access_request_form() -> Response:
        return request_form(Caller.of_request())

    @bp.post("/demande-acces")
    def access_request() -> Response:
        caller = Caller.of_request()
        form = request.form
        try:
            elapsed = time.time() - int(form.get("debut", ""))
        except ValueError:  # no start time: not sent from the form's page
            elapsed = -1.0
        robot = bool(form.get(HONEYPOT)) or elapsed < MIN_FILL_SECONDS
        wished = lifecycle.AccessRequest(
            full_name=form.get("nom", ""),
            email=form.get("courriel", ""),
            organisation=form.get("organisation", ""),
            departement=form.get("departement", ""),
            role=form.get("role", ""),
            reason=form.get("motif", ""),
        )
        try:
            if robot:  # the same answer as a success: a robot learns nothing
                lifecycle.check_request(caller, wished)
            else:
                lifecycle.submit_request(caller, wished, _client())
        except FieldErrors as exc:
            return request_form(caller, HTTPStatus.BAD_REQUEST, exc)
        return _page(api, "comptes/demande_envoyee.html")

    # -- administrators -------------------------------------------------------------------------

    def manager() -> Caller | Response:
        caller = signed_in(csv=False)
        if isinstance(caller, Response):
            return caller
        if caller.policy.manage_scope(caller.principal).is_empty:
            # a page, not the API's JSON error: these addresses are opened in a browser
            return _page(
                api,
                "comptes/refus.html",
                HTTPStatus.FORBIDDEN,
                message="Votre rôle ne vous permet pas de gérer des comptes : ces pages sont celles des "
                "administrateurs d'un territoire.",
            )
        return caller

    def requests_page(
        caller: Caller, status: int = HTTPStatus.OK, error: str | None = None, done: str | None = None
    ) -> Response:
        found = lifecycle.requests_in_scope(caller)
        policy = caller.policy
        return _page(
            api,
            "comptes/demandes.html",
            status,
            error=error,
            done=done,
            pending=[r for r in found if r["status"] == "pending"],
            decided=[r for r in found if r["status"] != "pending"],
            roles={n: r.label.fr for n, r in policy.roles.items()},
            grantable=[(n, policy.roles[n].label.fr) for n in policy.grantable_roles(caller.principal)],
            options=[(o, policy.options[o].fr) for o in policy.grantable_options(caller.principal)],
        )

    @bp.get("/administration/demandes")
    def requests_list() -> Response:
        caller = manager()
        return caller if isinstance(caller, Response) else requests_page(caller)

    @bp.post("/administration/demandes/<int:request_id>")
    def decide(request_id: int) -> Response:
        caller = manager()
        if isinstance(caller, Response):
            return caller
        form = request.form
        accept = form.get("decision") == "accepter"
        try:
            result = lifecycle.decide(
                caller,
                request_id,
                accept,
                username=form.get("identifiant", ""),
                role=form.get("role", ""),
                options=tuple(form.getlist("options")),
                note=form.get("note", ""),
            )
        except (InvalidParameter, Forbidden, NotFound) as exc:
            return requests_page(caller, exc.status, exc.message)
        if accept:
            return redirect(
                f"{base_url(api)}/administration/utilisateurs/{result['user_id']}", code=HTTPStatus.SEE_OTHER
            )
        return requests_page(caller, done="La demande est refusée ; son auteur en est informé par courriel.")

    @bp.get("/administration/utilisateurs")
    def users_list() -> Response:
        caller = manager()
        if isinstance(caller, Response):
            return caller
        return _page(
            api,
            "comptes/utilisateurs.html",
            users=lifecycle.users_in_scope(caller),
            roles={n: r.label.fr for n, r in caller.policy.roles.items()},
        )

    def user_page(
        caller: Caller,
        user_id: int,
        status: int = HTTPStatus.OK,
        error: str | None = None,
        done: str | None = None,
    ) -> Response:
        user = lifecycle.user_in_scope(caller, user_id)
        policy = caller.policy
        grantable = policy.grantable_roles(caller.principal)
        return _page(
            api,
            "comptes/utilisateur.html",
            status,
            error=error,
            done=done,
            user=user,
            actions=ACCOUNT_ACTIONS,
            roles={n: r.label.fr for n, r in policy.roles.items()},
            option_labels={o: label.fr for o, label in policy.options.items()},
            grantable=[(n, policy.roles[n].label.fr) for n in grantable],
            options=[(o, policy.options[o].fr) for o in policy.grantable_options(caller.principal)],
            may_change=user["role"] in grantable and user["id"] != caller.principal.user_id,
        )

    @bp.get("/administration/utilisateurs/<int:user_id>")
    def user_detail(user_id: int) -> Response:
        caller = manager()
        return caller if isinstance(caller, Response) else user_page(caller, user_id)

    @bp.post("/administration/utilisateurs/<int:user_id>")
    def user_update(user_id: int) -> Response:
        caller = manager()
        if isinstance(caller, Response):
            return caller
        form = request.form
        try:
            lifecycle.update_user(
                caller,
                user_id,
                form.get("role", ""),
                tuple(form.getlist("options")),
                form.get("actif") == "oui",
            )
        except (InvalidParameter, Forbidden) as exc:
            return user_page(caller, user_id, exc.status, exc.message)
        return user_page(caller, user_id, done="Modification enregistrée.")

    # -- one-time links -----------------------------------------------------------------------------

    def link_page(
        caller: Caller, token: str, status: int = HTTPStatus.OK, error: str | None = None
    ) -> Response:
        link = lifecycle.link_of(caller, token)
        charter = lifecycle.load_charter(caller.settings.charter_path)
        return _page(
            api,
            "comptes/lien.html",
            status,
            error=error,
            link=link,
            token=token,
            charter=charter,
            asks_charter=lifecycle.charter_asked(link, charter),
            action=request.path,
        )

    def use_link(token: str) -> Response:
        caller = Caller.of_request()
        form = request.form
        charter = lifecycle.load_charter(caller.settings.charter_path)
        try:
            lifecycle.use_link(
                caller,
                token,
                form.get("mot_de_passe", ""),
                form.get("confirmation", ""),
                charter.version if form.get("charte") == charter.version else None,
            )
        except InvalidParameter as exc:
            return link_page(caller, token, HTTPStatus.BAD_REQUEST, exc.message)
        return _page(api, "comptes/lien_utilise.html")

    @bp.get("/activation/<token>")
    def activation_form(token: str) -> Response:
        return link_page(Caller.of_request(), token)

    @bp.post("/activation/<token>")
    def activation(token: str) -> Response:
        return use_link(token)

    @bp.get("/reinitialisation/<token>")
    def reset_form(token: str) -> Response:
        return link_page(Caller.of_request(), token)

    @bp.post("/reinitialisation/<token>")
    def reset(token: str) -> Response:
        return use_link(token)

    @bp.get("/mot-de-passe-oublie")
    def forgotten_form() -> Response:
        return _page(api, "comptes/oubli.html", sent=False, error=None)

    @bp.post("/mot-de-passe-oublie")
    def forgotten() -> Response:
        try:
            lifecycle.request_reset(Caller.of_request(), request.form.get("courriel", ""), _client())
        except InvalidParameter as exc:
            return _page(api, "comptes/oubli.html", HTTPStatus.BAD_REQUEST, sent=False, error=exc.message)
        return _page(api, "comptes/oubli.html", sent=True, error=None)

    # -- the charter ----------------------------------------------------------------------------------

    @bp.get("/charte")
    def charter_form() -> Response:
        caller = Caller.of_request()
        charter = lifecycle.load_charter(caller.settings.charter_path)
        pending = not caller.principal.is_anonymous and lifecycle.charter_pending(caller, charter)
        return _page(
            api,
            "comptes/charte.html",
            charter=charter,
            pending=pending,
            suivant=safe_next(request.args.get("suivant")),
        )

    @bp.post("/charte")
    def charter_accept() -> Response:
        caller = signed_in(csv=False)
        if isinstance(caller, Response):
            return caller
        charter = lifecycle.load_charter(caller.settings.charter_path)
        if request.form.get("charte") != charter.version:
            return _page(
                api,
                "comptes/charte.html",
                HTTPStatus.BAD_REQUEST,
                charter=charter,
                pending=True,
                suivant=safe_next(request.form.get("suivant")),
                error="Cochez la case pour accepter la charte (ou déconnectez-vous).",
            )
        lifecycle.accept_charter(caller, charter)
        return redirect(safe_next(request.form.get("suivant")), code=HTTPStatus.SEE_OTHER)

    # -- « Mon compte » --------------------------------------------------------------------------------

    def current_hash() -> bytes | None:
        session_id = request.cookies.get("resorption_session")
        return session_hash(session_id) if session_id and current_session() else None

    def account_page(
        caller: Caller,
        status: int = HTTPStatus.OK,
        error: str | None = None,
        done: str | None = None,
        new_token: str | None = None,
    ) -> Response:
        account = lifecycle.my_account(caller, current_hash())
        policy = caller.policy
        return _page(
            api,
            "comptes/mon_compte.html",
            status,
            error=error,
            done=done,
            new_token=new_token,
            account=account,
            role=policy.roles[account["role"]].label.fr,
            option_labels={o: label.fr for o, label in policy.options.items()},
            subscriptions=lifecycle.SUBSCRIPTIONS,
            token_days=TOKEN_DAYS,
            session=current_session() is not None,
            manages=not policy.manage_scope(caller.principal).is_empty,
        )

    @bp.get("/mon-compte")
    def account() -> Response:
        caller = signed_in(csv=False)
        return caller if isinstance(caller, Response) else account_page(caller)

    @bp.post("/mon-compte/<what>")
    def account_change(what: str) -> Response:
        caller = signed_in(csv=False)
        if isinstance(caller, Response):
            return caller
        form = request.form
        try:
            if what == "profil":
                lifecycle.update_profile(caller, form.get("nom", ""))
                return account_page(caller, done="Profil enregistré.")
            if what == "jetons":
                days = int(form.get("duree") or "90") if (form.get("duree") or "90").isdigit() else 0
                token = lifecycle.create_token(caller, form.get("libelle", ""), days)
                return account_page(caller, done="Jeton créé.", new_token=token)
            if what == "revoquer":
                raw = form.get("jeton", "")
                revoked = raw.isdigit() and lifecycle.revoke_token(caller, int(raw))
                return account_page(
                    caller, done="Jeton révoqué." if revoked else "Ce jeton était déjà révoqué."
                )
            if what == "abonnements":
                lifecycle.set_subscriptions(caller, form.getlist("abonnements"))
                return account_page(caller, done="Abonnements enregistrés.")
            here = current_hash()
            if here is None:
                raise InvalidParameter(
                    "Connectez-vous avec le formulaire de connexion pour gérer vos sessions."
                )
            if what == "sessions":
                closed = lifecycle.close_other_sessions(caller, here)
                return account_page(caller, done=f"{closed} autre(s) session(s) fermée(s).")
            if what == "mot-de-passe":
                ended = lifecycle.change_password(
                    caller,
                    password_hash_of(caller.principal.username, caller.settings),
                    form.get("actuel", ""),
                    form.get("nouveau", ""),
                    form.get("confirmation", ""),
                    here,
                )
                return account_page(
                    caller,
                    done=f"Mot de passe changé : {ended['sessions']} autre(s) session(s) fermée(s), "
                    f"{ended['tokens']} jeton(s) révoqué(s).",
                )
        except InvalidParameter as exc:
            return account_page(caller, HTTPStatus.BAD_REQUEST, exc.message)
        raise NotFound("Page inconnue.")

    return bp

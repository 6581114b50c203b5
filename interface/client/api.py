"""The API's methods, written once for both clients.

Each method builds a :class:`~.calls.Call` and hands it to ``self._run``, which the sync
client answers with the parsed result and the async client with an awaitable of it;
``self._iterate`` likewise turns a page-fetching function into an iterator (sync) or an
async iterator. Everything else here (headers, login, requests) involves no I/O.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Self

import httpx

from butterflyfx.interface.machine import access, models, runtime

from . import profiles
from .calls import Call, call, without_none
from .retry import RetryPolicy

DEFAULT_TIMEOUT = 30.0


def _names(types: str | Sequence[str] | None) -> str | None:
    """Relationship types for a query string: a name, or several separated by commas."""
    return types if types is None or isinstance(types, str) else ",".join(types)


class Api(ABC):
    """The routes of the API as methods; the subclasses say how a call is sent."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = 3,
        backoff: float = 0.25,
        deadline: float = 60.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.token = token
        self.timeout = timeout
        self.policy = RetryPolicy(retries=retries, backoff=backoff, deadline=deadline)
        self._credentials: tuple[str, str] | None = None

    @classmethod
    def from_env(cls, profile: str | None = None, **options: Any) -> Self:
        """A client of the server and key the environment names (``BUTTERFLYFX_URL``,
        ``BUTTERFLYFX_API_KEY``), else the profile (``profile``, ``$BUTTERFLYFX_PROFILE`` or
        ``default``) of the profile file the ``butterflyfx`` commands read; see
        :mod:`~.profiles`. ``options`` are the constructor's. Raises
        :class:`~.profiles.ProfileError` for a missing profile or an unreadable file."""
        target = profiles.resolve(profile=profile)
        return cls(target.url, target.key, **options)

    # -- what the subclasses provide -------------------------------------------------

    @abstractmethod
    def _run(self, request: Call) -> Any:
        """Send ``request`` (retrying as the policy says) and parse the answer; the async
        client returns an awaitable."""

    @abstractmethod
    def _iterate(self, page: Callable[[str | None], Any]) -> Any:
        """Every item of a paginated list, fetching ``page(cursor)`` lazily."""

    # -- shared, no I/O ---------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        """The bearer credential: the token from :meth:`login` if any, else the API key."""
        secret = self.token or self.api_key
        return {"Authorization": f"Bearer {secret}"} if secret else {}

    def _request(self, http: httpx.Client | httpx.AsyncClient, request: Call) -> httpx.Request:
        return http.build_request(
            request.method,
            request.path,
            params=request.params,
            json=request.body,
            headers=self._headers(),
        )

    def _login_again(self, request: Call, response: httpx.Response) -> Call | None:
        """The login to make before sending ``request`` once more, when it got a 401 and
        :meth:`login` gave credentials (the token expired); else None."""
        if response.status_code != 401 or request.name == "login" or not self._credentials:
            return None
        return self._login_call(*self._credentials)

    def _login_call(self, username: str, password: str) -> Call:
        body = {"username": username, "password": password}
        return call("login", body=body, model=access.LoginAnswer, then=self._keep)

    def _keep(self, answer: access.LoginAnswer) -> access.LoginAnswer:
        self.token = answer.access_token
        return answer

    # -- substrates -------------------------------------------------------------------

    def create_substrate(
        self, expression_type: str, expression_code: str, metadata: Mapping[str, Any] | None = None
    ) -> Any:
        """Create (or, the same expression being the same substrate, fetch) a substrate."""
        body: dict[str, Any] = {
            "expression_type": expression_type,
            "expression_code": expression_code,
        }
        if metadata is not None:
            body["metadata"] = dict(metadata)
        return self._run(call("create_substrate", body=body, model=models.SubstrateBody))

    def get_substrate(self, substrate_id: str) -> Any:
        return self._run(
            call("get_substrate", {"substrate_id": substrate_id}, model=models.SubstrateBody)
        )

    def update_substrate(self, substrate_id: str, metadata: Mapping[str, Any] | None) -> Any:
        """Merge ``metadata`` into the substrate's (RFC 7396: a None value removes a key)."""
        body = {"metadata": None if metadata is None else dict(metadata)}
        return self._run(
            call(
                "update_substrate",
                {"substrate_id": substrate_id},
                body=body,
                model=models.SubstrateBody,
            )
        )

    def delete_substrate(self, substrate_id: str) -> Any:
        return self._run(call("delete_substrate", {"substrate_id": substrate_id}))

    def divide(self, substrate_id: str) -> Any:
        """The substrate's nine dimensions (:class:`DivisionBody`)."""
        return self._run(
            call("divide", {"substrate_id": substrate_id}, body={}, model=models.DivisionBody)
        )

    def invoke(self, substrate_id: str, parameters: Mapping[str, Any] | None = None) -> Any:
        """Run the substrate's expression on ``parameters`` (:class:`InvocationBody`)."""
        return self._run(
            call(
                "invoke",
                {"substrate_id": substrate_id},
                body={"parameters": dict(parameters or {})},
                model=models.InvocationBody,
            )
        )

    def multiply(
        self,
        substrate_ids: Sequence[str] | None = None,
        dimensions: Sequence[models.DimensionBody | Mapping[str, Any]] | None = None,
    ) -> Any:
        """The product of ``substrate_ids``, or the substrate ``dimensions`` (from divide)
        rebuild."""
        rebuilt = None
        if dimensions is not None:
            rebuilt = [
                d.model_dump() if isinstance(d, models.DimensionBody) else dict(d)
                for d in dimensions
            ]
        body = without_none(
            substrate_ids=None if substrate_ids is None else list(substrate_ids), dimensions=rebuilt
        )
        return self._run(call("multiply", body=body, model=models.SubstrateBody))

    def substrate_page(self, limit: int | None = None, cursor: str | None = None) -> Any:
        """One page (:class:`SubstratePage`); :meth:`list_substrates` walks them all."""
        return self._run(
            call(
                "substrate_page",
                params=without_none(limit=limit, cursor=cursor),
                model=models.SubstratePage,
            )
        )

    def list_substrates(self, page_size: int | None = None) -> Any:
        """Every substrate of the tenant, fetched a page at a time as iteration asks."""
        return self._iterate(lambda cursor: self.substrate_page(page_size, cursor))

    def create_substrates(self, items: Sequence[Mapping[str, Any]]) -> Any:
        """Create up to 500 substrates in one request; each item has the arguments of
        :meth:`create_substrate` as keys. The answer (:class:`SubstrateBatchBody`) holds one
        result per item, in order: 201 or 200 with the substrate, or a 4xx status with the
        problem that refused that item alone; the others are stored all the same."""
        body = {"substrates": [dict(item) for item in items]}
        return self._run(call("create_substrates", body=body, model=models.SubstrateBatchBody))

    # -- relationships ----------------------------------------------------------------

    def create_relationships(self, items: Sequence[Mapping[str, Any]]) -> Any:
        """Create up to 500 relationships in one request; each item has the arguments of
        :meth:`create_relationship` as keys. The answer (:class:`RelationshipBatchBody`)
        holds one result per item, in order; an item refused (a missing end: 404 naming
        ``source_id`` or ``target_id``) fails alone."""
        body = {"relationships": [dict(item) for item in items]}
        return self._run(
            call("create_relationships", body=body, model=models.RelationshipBatchBody)
        )

    def relationship_page(
        self,
        limit: int | None = None,
        cursor: str | None = None,
        types: str | Sequence[str] | None = None,
    ) -> Any:
        """One page of every relationship of the tenant (:class:`RelationshipPage`), each
        once; :meth:`list_relationships` walks them all."""
        params = without_none(type=_names(types), limit=limit, cursor=cursor)
        return self._run(call("relationship_page", params=params, model=models.RelationshipPage))

    def list_relationships(
        self, page_size: int | None = None, types: str | Sequence[str] | None = None
    ) -> Any:
        """Every relationship of the tenant (of ``types``, if given), each once, in id
        order, fetched a page at a time as iteration asks."""
        return self._iterate(lambda cursor: self.relationship_page(page_size, cursor, types))

    def create_relationship(
        self,
        source_id: str,
        target_id: str,
        relationship_type: str,
        *,
        bidirectional: bool = False,
        weight: float | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Any:
        body = {
            "source_id": source_id,
            "target_id": target_id,
            "relationship_type": relationship_type,
            "bidirectional": bidirectional,
            **without_none(weight=weight, metadata=None if metadata is None else dict(metadata)),
        }
        return self._run(call("create_relationship", body=body, model=models.RelationshipBody))

    def get_relationship(self, relationship_id: str) -> Any:
        return self._run(
            call(
                "get_relationship",
                {"relationship_id": relationship_id},
                model=models.RelationshipBody,
            )
        )

    def delete_relationship(self, relationship_id: str) -> Any:
        return self._run(call("delete_relationship", {"relationship_id": relationship_id}))

    def outgoing_page(
        self,
        substrate_id: str,
        types: str | Sequence[str] | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Any:
        return self._side_page("outgoing_page", substrate_id, types, limit, cursor)

    def incoming_page(
        self,
        substrate_id: str,
        types: str | Sequence[str] | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Any:
        return self._side_page("incoming_page", substrate_id, types, limit, cursor)

    def _side_page(
        self,
        name: str,
        substrate_id: str,
        types: str | Sequence[str] | None,
        limit: int | None,
        cursor: str | None,
    ) -> Any:
        """One page of the relationships on one side of ``substrate_id``."""
        params = without_none(type=_names(types), limit=limit, cursor=cursor)
        return self._run(
            call(name, {"substrate_id": substrate_id}, params=params, model=models.RelationshipPage)
        )

    def outgoing(
        self,
        substrate_id: str,
        types: str | Sequence[str] | None = None,
        page_size: int | None = None,
    ) -> Any:
        """Every relationship from ``substrate_id``, a page at a time."""
        return self._iterate(lambda c: self.outgoing_page(substrate_id, types, page_size, c))

    def incoming(
        self,
        substrate_id: str,
        types: str | Sequence[str] | None = None,
        page_size: int | None = None,
    ) -> Any:
        """Every relationship to ``substrate_id``, a page at a time."""
        return self._iterate(lambda c: self.incoming_page(substrate_id, types, page_size, c))

    def graph(
        self,
        root: str,
        depth: int | None = None,
        types: str | Sequence[str] | None = None,
        max_nodes: int | None = None,
    ) -> Any:
        params = without_none(root=root, depth=depth, types=_names(types), max_nodes=max_nodes)
        return self._run(call("graph", params=params, model=models.GraphBody))

    # -- queries ----------------------------------------------------------------------

    def traverse(
        self,
        start_id: str,
        direction: str | None = None,
        max_depth: int | None = None,
        relationship_types: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> Any:
        body = without_none(
            start_id=start_id,
            direction=direction,
            max_depth=max_depth,
            relationship_types=relationship_types,
            limit=limit,
        )
        return self._run(call("traverse", body=body, model=models.TraverseBody))

    def path(
        self,
        source_id: str,
        target_id: str,
        *,
        weighted: bool | None = None,
        direction: str | None = None,
        max_depth: int | None = None,
        relationship_types: Sequence[str] | None = None,
    ) -> Any:
        body = without_none(
            source_id=source_id,
            target_id=target_id,
            weighted=weighted,
            direction=direction,
            max_depth=max_depth,
            relationship_types=relationship_types,
        )
        return self._run(call("path", body=body, model=models.PathBody))

    def search_page(
        self, limit: int | None = None, cursor: str | None = None, **filters: Any
    ) -> Any:
        """One page of substrates matching ``filters`` (the fields of SearchRequest)."""
        body = without_none(limit=limit, cursor=cursor, **filters)
        return self._run(call("search_page", body=body, model=models.SubstratePage))

    def search(self, page_size: int | None = None, **filters: Any) -> Any:
        """Every substrate matching ``filters``, a page at a time."""
        return self._iterate(lambda cursor: self.search_page(page_size, cursor, **filters))

    def stats(self) -> Any:
        """The tenant's counts (:class:`models.StatsBody`)."""
        return self._run(call("stats", model=models.StatsBody))

    # -- keys and login ---------------------------------------------------------------

    def list_keys(self) -> Any:
        """The tenant's keys (a list of :class:`access.ApiKeyBody`), revoked ones included."""
        return self._run(call("list_keys", model=access.ApiKeyList, then=lambda body: body.keys))

    def create_key(
        self, tier: str | None = None, scopes: Sequence[str] | None = None, name: str | None = None
    ) -> Any:
        """A new API key (:class:`access.NewApiKeyBody`): its ``key`` is the secret, shown
        only this once."""
        body = without_none(tier=tier, scopes=None if scopes is None else list(scopes), name=name)
        return self._run(call("create_key", body=body, model=access.NewApiKeyBody))

    def get_key(self, key_id: str) -> Any:
        """One key of the tenant (:class:`access.ApiKeyBody`)."""
        return self._run(call("get_key", {"key_id": key_id}, model=access.ApiKeyBody))

    def revoke_key(self, key_id: str) -> Any:
        return self._run(call("revoke_key", {"key_id": key_id}))

    def login(self, username: str, password: str) -> Any:
        """Log in (auth.jwt) for a :class:`access.LoginAnswer`: later requests send its token;
        when it expires (a 401), the client logs in again once with these credentials and
        repeats the request."""
        self._credentials = (username, password)
        return self._run(self._login_call(username, password))

    # -- the server -------------------------------------------------------------------

    def health(self) -> Any:
        return self._run(call("health", model=models.HealthBody))

    def ready(self) -> Any:
        """:class:`HealthBody` when ready; raises :class:`Unavailable` (503) when not."""
        return self._run(call("ready", model=models.HealthBody))

    def server_status(self) -> Any:
        return self._run(call("server_status", model=runtime.StatusBody))

    def server_stats(self) -> Any:
        return self._run(call("server_stats", model=runtime.StatsBody))

    def connections(self, limit: int | None = None) -> Any:
        return self._run(
            call("connections", params=without_none(limit=limit), model=runtime.ConnectionsBody)
        )

    def manifold(self, spiral: int, level: int, position: float) -> Any:
        params = {"spiral": spiral, "level": level, "position": position}
        return self._run(call("manifold", params=params, model=runtime.ManifoldPointBody))

    def metrics(self) -> Any:
        """The Prometheus text of the metrics plugin."""
        return self._run(call("metrics", text=True))

    def metrics_root(self) -> Any:
        """The same text at ``/metrics``, where scrapers look by default."""
        return self._run(call("metrics_root", text=True))

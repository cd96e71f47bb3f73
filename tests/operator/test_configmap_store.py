"""The operator's ConfigMap cache: a refresh (page by page) keeps what the operator wrote while it listed.

The API here is a stand-in that answers two pages and lets the test write in between: the interleaving a
real server gives only by chance (a reconcile writing while the orphan sweep lists).
"""

from __future__ import annotations

import asyncio
from typing import Any

from graylane.operator.configmaps import ConfigMapStore, Written

from graylane.compile import names


def configmap(name: str, uid: str) -> dict[str, Any]:
    labels = names.route_labels("shop", name, uid)
    annotations = {names.ROUTE_ANNOTATION: f"shop/{name}", "graylane.io/checksum": "sha256:1"}
    return {"metadata": {"name": name, "uid": f"cm-{uid}", "resourceVersion": "1", "labels": labels,
                         "annotations": annotations}}  # fmt: skip


class PagedApi:
    def __init__(self, store: ConfigMapStore, pages: list[list[dict[str, Any]]]) -> None:
        self.store, self.pages, self.asked = store, pages, 0

    async def get(self, url: str) -> Any:
        page = self.pages[self.asked]
        self.asked += 1
        if self.asked == 1:  # a reconcile writes and deletes while the list is under way
            self.store.put(Written.from_object(configmap("written-meanwhile", "u9")))
            self.store.discard("deleted-meanwhile")
        more = {"continue": "next"} if self.asked < len(self.pages) else {"resourceVersion": "7"}
        return {"items": page, "metadata": more}


def test_a_refresh_keeps_what_was_written_or_deleted_while_it_listed() -> None:
    store = ConfigMapStore("graylane")
    store.put(Written.from_object(configmap("deleted-meanwhile", "u8")))
    pages = [[configmap("a", "u1"), configmap("deleted-meanwhile", "u8")], [configmap("b", "u2")]]
    api = PagedApi(store, pages)
    asyncio.run(store.refresh(api))  # type: ignore[arg-type]
    assert api.asked == 2, "both pages read"
    assert set(store.by_name) == {"a", "b", "written-meanwhile"}
    assert [w.name for w in store.for_route("u9")] == ["written-meanwhile"]
    assert store.for_route("u8") == []

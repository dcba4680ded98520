"""Visit routes: a service names the service a ticket moves to on DONE.

``services[].then = "nurse"`` makes every ticket of the service carry the route
that follows from it (reception → nurse → doctor when ``nurse`` has ``then =
"doctor"``): set when the ticket is issued (``Ticket.route``), so on each DONE the
ticket joins its next service keeping its number (``calling.done``), and a config
change later in the day does not move tickets already on their way.

    route_of(cfg, "reception")
    # -> ('nurse', 'doctor')
    route_text(cfg, "reception", ("nurse", "doctor"), "en")
    # -> 'Reception > Nurse / Bloods > Doctor'
"""

from __future__ import annotations

from collections.abc import Sequence

from tessera.config import BranchConfig
from tessera.config_decode import show

# ASCII: a Latin-only printer prints it as native text (a "→" would be a raster line)
ARROW = " > "


def route_of(cfg: BranchConfig, service: str) -> tuple[str, ...]:
    """The services a ticket of ``service`` visits after it, by ``then`` (a config that
    passed :func:`config_errors` has no cycle; a cycle is cut where it closes)."""
    then = {s.id: s.then for s in cfg.services}
    out: list[str] = []
    seen = {service}
    nxt = then.get(service)
    while nxt and nxt in then and nxt not in seen:
        out.append(nxt)
        seen.add(nxt)
        nxt = then.get(nxt)
    return tuple(out)


def route_text(cfg: BranchConfig, service: str, route: Sequence[str], lang: str) -> str:
    """The ticket's route line (its service, then each next one, by name), or "" when it
    has no route."""
    if not route:
        return ""
    names = {s.id: s.name(lang) for s in cfg.services}
    return ARROW.join(names.get(s, s) for s in (service, *route))


def longest_route_text(cfg: BranchConfig) -> str:
    """The longest route line any service's tickets print (for the config checks)."""
    lines = [route_text(cfg, s.id, route_of(cfg, s.id), lang)
             for s in cfg.services for lang in (*s.names, cfg.branch.languages[0])]
    return max(lines, key=lambda t: len(t.encode()), default="")


def config_errors(cfg: BranchConfig) -> list[str]:
    """``services[i].then``: an existing service, not itself, no cycle."""
    ids = [s.id for s in cfg.services]
    errs: list[str] = []
    for i, s in enumerate(cfg.services):
        if s.then is None:
            continue
        where = f"services[{i}].then"
        if s.then not in ids:
            errs.append(f"{where}: unknown service {show(s.then)}; known: "
                        + ", ".join(sorted(ids)))
        elif s.then == s.id:
            errs.append(f"{where}: {show(s.id)} cannot be followed by itself")
        else:
            chain = [s.id]
            nxt: str | None = s.then
            then = {x.id: x.then for x in cfg.services}
            while nxt is not None and nxt not in chain and nxt in then:
                chain.append(nxt)
                nxt = then[nxt]
            if nxt == s.id:
                errs.append(f"{where}: the route makes a cycle ({ARROW.join([*chain, s.id])}); "
                            "a ticket would never finish: remove one 'then'")
    return errs

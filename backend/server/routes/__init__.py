"""HTTP routes, one module per concern; each has `install(routes, ctx)`."""

from . import account, admin, events, farm, files, jobs, manager_api, meta, pages

MODULES = (meta, account, jobs, files, farm, admin, manager_api, events, pages)


def install_all(routes, ctx) -> None:
    for module in MODULES:
        module.install(routes, ctx)

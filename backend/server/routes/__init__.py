"""HTTP routes, one module per concern; each has `install(routes, ctx)`."""

from . import account, admin, farm, files, jobs, manager_api, meta, pages

MODULES = (meta, account, jobs, files, farm, admin, manager_api, pages)


def install_all(routes, ctx) -> None:
    for module in MODULES:
        module.install(routes, ctx)

"""HTTP routes, one module per concern; each has `install(routes, ctx)`."""

from . import admin, farm, files, jobs, manager_api, meta

MODULES = (meta, jobs, files, farm, admin, manager_api)


def install_all(routes, ctx) -> None:
    for module in MODULES:
        module.install(routes, ctx)

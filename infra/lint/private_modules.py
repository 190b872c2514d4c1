"""An import-linter contract type: no package imports another package's private module.

A module is private when a segment of its name after the package starts with one underscore
(`autoperi_eval._chgnet`, `scorer_svc._model`); a package's public surface is its `__init__` and
its public modules. Imports inside one package are free. Registered in pyproject.toml
(`contract_types`) and checked by `lint-imports` in `make lint` and `make test`.
"""

from typing import TYPE_CHECKING

from importlinter import Contract, ContractCheck, fields, output

if TYPE_CHECKING:
    from grimp import ImportGraph


def is_private(module: str) -> bool:
    """True when a segment of `module` after its top-level package starts with one underscore."""
    return any(s.startswith("_") and not s.startswith("__") for s in module.split(".")[1:])


class PrivateModulesContract(Contract):
    """Options: `packages`, the top-level packages whose private modules only they may import."""

    type_name = "private_modules"
    packages = fields.ListField(subfield=fields.StringField())

    def check(self, graph: "ImportGraph", verbose: bool) -> ContractCheck:
        packages = set(self.packages)  # type: ignore[arg-type]
        found = []
        for importer in sorted(graph.modules):
            home = importer.split(".")[0]
            if home not in packages:
                continue
            for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                owner = imported.split(".")[0]
                if owner != home and owner in packages and is_private(imported):
                    details = graph.get_import_details(importer=importer, imported=imported)
                    lines = sorted({d["line_number"] for d in details})
                    found.append((importer, imported, lines))
        return ContractCheck(kept=not found, warnings=None, metadata={"found": found})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for importer, imported, lines in check.metadata["found"]:
            where = ", ".join(f"l.{n}" for n in lines)
            output.print_error(f"{importer} -> {imported} ({where})", bold=False)
            output.new_line()

#!/usr/bin/env python3
"""Lists the public API of a crate from its rustdoc JSON, one line per item, for review.

Usage: public_api.py <crate>.json [<dependency>.json ...] > public-api.txt
(scripts/public-api.sh runs it). A dependency's JSON, where given, names its items by their
public paths (`keylink::AsyncKeylink`) instead of where they are defined.

Every item reachable from the crate root is listed under each path a user reaches it by (an item
re-exported at the root and living in a public module shows under both), with its signature:
functions and methods, structs and their public fields, enums and their variants, traits and
their items, constants, statics, type aliases and macros, and the trait impls of public types.
Blanket impls (`impl<T> Into<U> for T`, and the extension traits of dependencies) are left
out: they follow from the other impls and would change with every dependency update. Auto
traits (Send, Sync, Unpin, UnwindSafe, RefUnwindSafe) are listed, since losing one breaks
callers; `Freeze` and `StructuralPartialEq` are left out, as stable Rust cannot name them.
`#[doc(hidden)]` items are not part of the API; rustdoc leaves them out already, and
any that slips through is skipped here.

Standard library only, so the check needs nothing installed but the toolchain.
"""

import json
import sys

# The rustdoc JSON format is unstable and changes shape between toolchains; this lister reads
# the versions below. A newer version may still be readable: check rustdoc-types' changelog
# for the versions in between, adjust, and add it here.
KNOWN_FORMAT_VERSIONS = {57}

# Auto traits the compiler implements; `Freeze` is left out as it cannot be named on stable.
AUTO_TRAITS = {"Send", "Sync", "Unpin", "UnwindSafe", "RefUnwindSafe"}

# Traits whose impls are not shown: unstable markers that `#[derive]` adds.
UNNAMEABLE_TRAITS = {"core::marker::StructuralPartialEq"}

# Standard library items in the prelude, shown by their plain name as a user writes them.
PRELUDE = {
    "core::option::Option": "Option",
    "core::result::Result": "Result",
    "alloc::string::String": "String",
    "alloc::vec::Vec": "Vec",
    "alloc::boxed::Box": "Box",
    "core::marker::Send": "Send",
    "core::marker::Sync": "Sync",
    "core::marker::Sized": "Sized",
    "core::marker::Copy": "Copy",
    "core::marker::Unpin": "Unpin",
    "core::clone::Clone": "Clone",
    "core::default::Default": "Default",
    "core::cmp::PartialEq": "PartialEq",
    "core::cmp::Eq": "Eq",
    "core::cmp::PartialOrd": "PartialOrd",
    "core::cmp::Ord": "Ord",
    "core::convert::From": "From",
    "core::convert::Into": "Into",
    "core::convert::TryFrom": "TryFrom",
    "core::convert::TryInto": "TryInto",
    "core::convert::AsRef": "AsRef",
    "core::convert::AsMut": "AsMut",
    "core::ops::drop::Drop": "Drop",
    "core::ops::function::Fn": "Fn",
    "core::ops::function::FnMut": "FnMut",
    "core::ops::function::FnOnce": "FnOnce",
    "core::iter::traits::iterator::Iterator": "Iterator",
    "core::iter::traits::collect::IntoIterator": "IntoIterator",
    "core::iter::traits::collect::Extend": "Extend",
    "alloc::string::ToString": "ToString",
    "alloc::borrow::ToOwned": "ToOwned",
}

# Standard library items defined in private modules, shown where users name them.
STD_REEXPORTS = {
    "std::collections::hash::map::HashMap": "std::collections::HashMap",
    "std::collections::hash::set::HashSet": "std::collections::HashSet",
    "alloc::collections::btree::map::BTreeMap": "std::collections::BTreeMap",
    "alloc::collections::btree::set::BTreeSet": "std::collections::BTreeSet",
    "alloc::collections::vec_deque::VecDeque": "std::collections::VecDeque",
    "core::panic::unwind_safe::UnwindSafe": "std::panic::UnwindSafe",
    "core::panic::unwind_safe::RefUnwindSafe": "std::panic::RefUnwindSafe",
    "core::error::Error": "std::error::Error",
    "core::ops::deref::Deref": "std::ops::Deref",
    "core::ops::deref::DerefMut": "std::ops::DerefMut",
    "core::str::traits::FromStr": "std::str::FromStr",
    "core::hash::Hash": "std::hash::Hash",
    "core::fmt::Debug": "std::fmt::Debug",
    "core::fmt::Display": "std::fmt::Display",
    "core::borrow::Borrow": "std::borrow::Borrow",
    "alloc::borrow::Cow": "std::borrow::Cow",
    "std::io::error::Error": "std::io::Error",
    "std::path::PathBuf": "std::path::PathBuf",
    "std::ffi::os_str::OsString": "std::ffi::OsString",
    "std::ffi::os_str::OsStr": "std::ffi::OsStr",
    "core::future::future::Future": "std::future::Future",
    "core::pin::Pin": "std::pin::Pin",
    # serde re-exports serde_core, and users name it through serde.
    "serde_core::ser::Serialize": "serde::Serialize",
    "serde_core::ser::Serializer": "serde::Serializer",
    "serde_core::de::Deserialize": "serde::Deserialize",
    "serde_core::de::Deserializer": "serde::Deserializer",
    "serde_core::de::DeserializeOwned": "serde::de::DeserializeOwned",
}


class Shape(Exception):
    """The JSON is not in a shape this lister knows."""


def tag(value, where):
    """An externally tagged enum as (variant, payload): `"unit"` or `{"variant": payload}`."""
    if isinstance(value, str):
        return value, None
    if isinstance(value, dict) and len(value) == 1:
        return next(iter(value.items()))
    raise Shape(f"expected a tagged {where}, found {json.dumps(value)[:200]}")


def field(obj, name, where):
    try:
        return obj[name]
    except (KeyError, TypeError):
        raise Shape(f"{where} has no field {name!r}: {json.dumps(obj)[:200]}") from None


class Lister:
    def __init__(self, krate, dependencies=()):
        self.index = krate["index"]
        self.paths = krate["paths"]
        self.root = str(krate["root"])
        self.crate_name = self.item(self.root)["name"]
        self.lines = set()
        # Every path each local item is reachable by, found before anything is rendered so
        # signatures can name a type by its shortest public path.
        self.reachable = {}
        self.walk(self.root, [self.crate_name], self.note_path, set())
        self.canonical = {
            item_id: min(found, key=lambda p: (len(p), p))
            for item_id, found in self.reachable.items()
        }
        # A dependency's items by where they are defined, to the path its users name them by.
        self.dependency_paths = {}
        for dependency in dependencies:
            for item_id, path in dependency.canonical.items():
                summary = dependency.paths.get(item_id)
                if summary is not None:
                    self.dependency_paths[tuple(summary["path"])] = "::".join(path)

    def item(self, item_id):
        return self.index.get(str(item_id))

    def hidden(self, item):
        # rustdoc strips `#[doc(hidden)]` items; this catches any it passes through.
        for attr in item.get("attrs", []):
            kind, payload = tag(attr, "attribute")
            if kind == "other" and "doc(hidden)" in payload.replace(" ", ""):
                return True
        return False

    # -- Reachability ---------------------------------------------------------------------

    def note_path(self, item_id, path):
        if isinstance(item_id, tuple):
            return  # a dependency's item or a glob-imported variant, never named in a signature
        self.reachable.setdefault(str(item_id), []).append(tuple(path))

    def walk(self, item_id, path, visit, stack):
        """Calls visit(id, path) for every public item reachable from module `item_id`."""
        item = self.item(item_id)
        if item is None or self.hidden(item) or item_id in stack:
            return
        # `stack` holds the modules above, so a module that re-exports its parent ends here.
        stack = stack | {item_id}
        visit(item_id, path)
        kind, inner = tag(item["inner"], "item")
        if kind != "module":
            return
        for child_id in field(inner, "items", "module"):
            self.walk_child(str(child_id), path, visit, stack)

    def walk_child(self, child_id, path, visit, stack):
        child = self.item(child_id)
        if child is None or self.hidden(child) or child["visibility"] != "public":
            return
        kind, inner = tag(child["inner"], "item")
        if kind == "impl":
            return
        if kind != "use":
            self.walk(child_id, path + [child["name"]], visit, stack)
            return
        target_id = inner.get("id")
        target_id = None if target_id is None else str(target_id)
        target = self.item(target_id) if target_id is not None else None
        if not inner["is_glob"]:
            if target is not None:
                self.walk(target_id, path + [inner["name"]], visit, stack)
            elif target_id is None or self.external(target_id):
                # A dependency's item or a primitive: its API is not this crate's to list.
                visit(("use", child_id), path + [inner["name"]])
            return
        if target is None:
            visit(("use", child_id), path + ["*"])
            return
        target_kind, target_inner = tag(target["inner"], "item")
        if target_kind == "module":
            for grandchild_id in target_inner["items"]:
                self.walk_child(str(grandchild_id), path, visit, stack)
        elif target_kind == "enum":
            for variant_id in target_inner["variants"]:
                variant_path = path + [self.item(variant_id)["name"]]
                visit(("variant", str(variant_id), target_id), variant_path)
        else:
            raise Shape(f"a glob import of a {target_kind}")

    def external(self, item_id):
        summary = self.paths.get(str(item_id))
        return summary is not None and summary["crate_id"] != 0

    # -- Listing ---------------------------------------------------------------------------

    def emit(self, owner, rank, text):
        self.lines.add((tuple(owner), rank, text))

    def listing(self):
        self.walk(self.root, [self.crate_name], self.list_item, set())
        return [text for _, _, text in sorted(self.lines)]

    def list_item(self, item_id, path):
        name = "::".join(path)
        if isinstance(item_id, tuple):
            if item_id[0] == "use":
                use = self.item(item_id[1])["inner"]["use"]
                self.emit(path, 0, f"pub use {name} (re-exports {self.use_source(use)})")
            else:
                # A variant re-exported by `pub use Enum::*`.
                self.list_variant(self.item(item_id[1]), path[:-1], item_id[2])
            return
        item = self.item(item_id)
        kind, inner = tag(item["inner"], "item")
        prefix = self.attributes(item)
        self_path = {item_id: name}
        if kind == "module":
            self.emit(path, 0, f"{prefix}pub mod {name}")
        elif kind == "struct":
            generics = inner["generics"]
            struct_kind, fields = tag(inner["kind"], "struct kind")
            head = f"{prefix}pub struct {name}{self.params(generics)}"
            where = self.where_clause(generics)
            if struct_kind == "unit":
                self.emit(path, 0, f"{head}{where}")
            elif struct_kind == "tuple":
                self.emit(path, 0, f"{head}({self.tuple_fields(fields, self_path)}){where}")
            elif struct_kind == "plain":
                self.emit(path, 0, f"{head}{where}")
                for field_id in fields["fields"]:
                    self.list_field(self.item(field_id), path, self_path)
            else:
                raise Shape(f"struct kind {struct_kind!r}")
            self.list_impls(inner["impls"], path, item_id)
        elif kind == "union":
            generics = inner["generics"]
            where = self.where_clause(generics)
            self.emit(path, 0, f"{prefix}pub union {name}{self.params(generics)}{where}")
            for field_id in inner["fields"]:
                self.list_field(self.item(field_id), path, self_path)
            self.list_impls(inner["impls"], path, item_id)
        elif kind == "enum":
            generics = inner["generics"]
            where = self.where_clause(generics)
            self.emit(path, 0, f"{prefix}pub enum {name}{self.params(generics)}{where}")
            for variant_id in inner["variants"]:
                variant = self.item(variant_id)
                self.list_variant(variant, path, item_id)
            self.list_impls(inner["impls"], path, item_id)
        elif kind == "variant":
            # Reached through `pub use Enum::Variant`.
            self.list_variant(item, path[:-1], None, alias=path)
        elif kind == "function":
            self.emit(path, 0, f"{prefix}{self.function(name, inner, 'pub ', self_path)}")
        elif kind == "trait":
            self.list_trait(item, inner, path, prefix)
        elif kind == "trait_alias":
            generics = inner["generics"]
            bounds = self.bounds(inner["params"], {})
            where = self.where_clause(generics)
            self.emit(path, 0, f"{prefix}pub trait {name}{self.params(generics)} = {bounds}{where}")
        elif kind == "type_alias":
            generics = inner["generics"]
            self.emit(
                path, 0,
                f"{prefix}pub type {name}{self.params(generics)}{self.where_clause(generics)} = "
                f"{self.type(inner['type'], {})}",
            )
        elif kind == "constant":
            self.emit(path, 0, f"{prefix}pub const {name}: {self.type(inner['type'], {})}")
        elif kind == "static":
            mutable = "mut " if inner["is_mutable"] else ""
            unsafe = "unsafe " if inner.get("is_unsafe") else ""
            shown = self.type(inner["type"], {})
            self.emit(path, 0, f"{prefix}pub {unsafe}static {mutable}{name}: {shown}")
        elif kind == "macro":
            self.emit(path, 0, f"{prefix}pub macro {name}!")
        elif kind == "proc_macro":
            macro_kind = inner["kind"]
            shown = {"bang": f"{name}!", "attr": f"#[{name}]", "derive": f"#[derive({name})]"}
            self.emit(path, 0, f"{prefix}pub proc macro {shown.get(macro_kind, name)}")
        elif kind in ("extern_type",):
            self.emit(path, 0, f"{prefix}pub type {name}")
        elif kind == "extern_crate":
            self.emit(path, 0, f"{prefix}pub extern crate {name}")
        elif kind in ("primitive", "assoc_const", "assoc_type", "struct_field", "impl", "use"):
            raise Shape(f"a {kind} directly in a module")
        else:
            raise Shape(f"item kind {kind!r}")

    def attributes(self, item):
        """The attributes that change what a user may do with an item."""
        shown = []
        if item.get("deprecation") is not None:
            shown.append("#[deprecated]")
        for attr in item.get("attrs", []):
            kind, payload = tag(attr, "attribute")
            if kind == "non_exhaustive":
                shown.append("#[non_exhaustive]")
            elif kind == "repr":
                shown.append(f"#[repr({self.repr(payload)})]")
        return "".join(a + " " for a in shown)

    def repr(self, payload):
        parts = []
        if payload["kind"] != "rust":
            parts.append("C" if payload["kind"] == "c" else payload["kind"])
        if payload.get("int"):
            parts.append(payload["int"])
        if payload.get("align") is not None:
            parts.append(f"align({payload['align']})")
        if payload.get("packed") is not None:
            parts.append(f"packed({payload['packed']})")
        return ", ".join(parts) or "Rust"

    def tuple_fields(self, fields, self_path):
        shown = []
        for field_id in fields:
            item = self.item(field_id) if field_id is not None else None
            if item is None or item["visibility"] != "public" or self.hidden(item):
                shown.append("_")
            else:
                shown.append(f"pub {self.field_type(item, self_path)}")
        return ", ".join(shown)

    def list_field(self, item, path, self_path):
        if item is None or item["visibility"] != "public" or self.hidden(item):
            return
        name = "::".join(path + [item["name"]])
        shown = self.field_type(item, self_path)
        self.emit(path, 1, f"{self.attributes(item)}pub {name}: {shown}")

    def field_type(self, item, self_path):
        return self.type(field(item["inner"], "struct_field", "field"), self_path)

    def list_variant(self, variant, enum_path, enum_id, alias=None):
        if variant is None or self.hidden(variant):
            return
        path = alias or enum_path + [variant["name"]]
        name = "::".join(path)
        self_path = {enum_id: "::".join(enum_path)} if enum_id else {}
        inner = variant["inner"]["variant"]
        kind, fields = tag(inner["kind"], "variant kind")
        discriminant = inner.get("discriminant")
        value = f" = {discriminant['expr']}" if discriminant else ""
        prefix = self.attributes(variant)
        if kind == "plain":
            self.emit(enum_path, 1, f"{prefix}pub {name}{value}")
        elif kind == "tuple":
            shown = []
            for field_id in fields:
                item = self.item(field_id) if field_id is not None else None
                shown.append("_" if item is None else self.field_type(item, self_path))
            self.emit(enum_path, 1, f"{prefix}pub {name}({', '.join(shown)}){value}")
        elif kind == "struct":
            self.emit(enum_path, 1, f"{prefix}pub {name} {{ .. }}{value}")
            for field_id in fields["fields"]:
                item = self.item(field_id)
                if item is None or self.hidden(item):
                    continue
                self.emit(
                    enum_path, 1,
                    f"pub {name}::{item['name']}: {self.field_type(item, self_path)}",
                )
        else:
            raise Shape(f"variant kind {kind!r}")

    def list_trait(self, item, inner, path, prefix):
        name = "::".join(path)
        generics = inner["generics"]
        unsafe = "unsafe " if inner["is_unsafe"] else ""
        auto = "auto " if inner["is_auto"] else ""
        bounds = self.bounds(inner["bounds"], {})
        supertraits = f": {bounds}" if bounds else ""
        self.emit(
            path, 0,
            f"{prefix}pub {unsafe}{auto}trait {name}{self.params(generics)}{supertraits}"
            f"{self.where_clause(generics)}",
        )
        for member_id in inner["items"]:
            self.list_assoc(self.item(member_id), path, 2, "pub ", {})
        for impl_id in inner["implementations"]:
            self.list_impl(self.item(impl_id), path, None, {})

    def list_assoc(self, member, owner_path, rank, visibility, self_path, prefix_path=None):
        """An associated function, constant or type, in a trait or an impl. It is named under
        `prefix_path` (the owner's path unless given) and listed with the owner's lines."""
        if member is None or self.hidden(member):
            return
        name = "::".join((prefix_path or owner_path) + [member["name"]])
        prefix = self.attributes(member)
        kind, inner = tag(member["inner"], "associated item")
        if kind == "function":
            shown = self.function(name, inner, visibility, self_path)
            self.emit(owner_path, rank, f"{prefix}{shown}")
        elif kind == "assoc_const":
            shown = self.type(inner["type"], self_path)
            self.emit(owner_path, rank, f"{prefix}{visibility}const {name}: {shown}")
        elif kind == "assoc_type":
            generics = inner["generics"]
            bounds = self.bounds(inner["bounds"], self_path)
            text = f"{prefix}{visibility}type {name}{self.params(generics)}"
            if bounds:
                text += f": {bounds}"
            text += self.where_clause(generics)
            if inner.get("type") is not None:
                text += f" = {self.type(inner['type'], self_path)}"
            self.emit(owner_path, rank, text)
        else:
            raise Shape(f"associated item kind {kind!r}")

    def list_impls(self, impl_ids, path, type_id):
        self_path = {type_id: "::".join(path)}
        for impl_id in impl_ids:
            self.list_impl(self.item(impl_id), path, type_id, self_path)

    def list_impl(self, impl, owner_path, type_id, self_path):
        if impl is None or self.hidden(impl):
            return
        inner = field(impl["inner"], "impl", "impl item")
        if inner.get("blanket_impl") is not None:
            return
        trait = inner.get("trait")
        if trait is None:
            # Inherent methods, constants and types, under the type's path.
            for member_id in inner["items"]:
                member = self.item(member_id)
                if member is not None and member["visibility"] == "public":
                    self.list_assoc(member, owner_path, 2, "pub ", self_path)
            return
        if inner["is_synthetic"] and trait["path"].split("::")[-1] not in AUTO_TRAITS:
            return
        trait_summary = self.paths.get(str(trait["id"]))
        if trait_summary and "::".join(trait_summary["path"]) in UNNAMEABLE_TRAITS:
            return
        generics = inner["generics"]
        unsafe = "unsafe " if inner["is_unsafe"] else ""
        negative = "!" if inner["is_negative"] else ""
        trait_name = self.path(trait, self_path)
        for_type = self.type(inner["for"], self_path)
        text = (
            f"{unsafe}impl{self.params(generics, defaults=False)} {negative}{trait_name} "
            f"for {for_type}{self.where_clause(generics)}"
        )
        self.emit(owner_path, 4 if inner["is_synthetic"] else 3, text)
        # The associated types and constants a trait impl fixes (`type Target = str`) are part
        # of the API; its methods' signatures follow from the trait.
        for member_id in inner["items"]:
            member = self.item(member_id)
            if member is None:
                continue
            kind, _ = tag(member["inner"], "impl item")
            if kind in ("assoc_type", "assoc_const"):
                qualified = [f"<{for_type} as {trait_name}>"]
                self.list_assoc(member, owner_path, 3, "", self_path, prefix_path=qualified)

    def use_source(self, use):
        target_id = use.get("id")
        summary = self.paths.get(str(target_id)) if target_id is not None else None
        if summary is None:
            return use["source"]
        if summary["kind"] == "module" and len(summary["path"]) == 1:
            return f"the crate {summary['path'][0]}"
        return self.known_path(summary["path"])

    # -- Rendering -------------------------------------------------------------------------

    def function(self, name, inner, visibility, self_path):
        header = inner["header"]
        qualifiers = ""
        if header["is_const"]:
            qualifiers += "const "
        if header["is_async"]:
            qualifiers += "async "
        if header["is_unsafe"]:
            qualifiers += "unsafe "
        qualifiers += self.abi(header["abi"])
        generics = inner["generics"]
        return (
            f"{visibility}{qualifiers}fn {name}{self.params(generics)}"
            f"{self.signature(inner['sig'], self_path, method=True)}{self.where_clause(generics)}"
        )

    def abi(self, abi):
        # Abi's variants keep their Rust names in the JSON ("Rust", {"C": {"unwind": false}}).
        kind, payload = tag(abi, "ABI")
        kind = kind.lower()
        if kind == "rust":
            return ""
        if kind == "other":
            return f'extern "{payload}" '
        names = {"c": "C", "cdecl": "cdecl", "stdcall": "stdcall", "fastcall": "fastcall",
                 "aapcs": "aapcs", "win64": "win64", "sysv64": "sysv64", "system": "system"}
        if kind not in names:
            raise Shape(f"ABI {kind!r}")
        unwind = "-unwind" if payload and payload.get("unwind") else ""
        return f'extern "{names[kind]}{unwind}" '

    def signature(self, sig, self_path, method):
        inputs = []
        for position, (arg_name, arg_type) in enumerate(sig["inputs"]):
            if method and position == 0 and arg_name == "self":
                inputs.append(self.receiver(arg_type, self_path))
            elif method:
                inputs.append(f"{arg_name}: {self.type(arg_type, self_path)}")
            else:
                inputs.append(self.type(arg_type, self_path))
        if sig.get("is_c_variadic"):
            inputs.append("...")
        output = sig.get("output")
        returns = f" -> {self.type(output, self_path)}" if output is not None else ""
        return f"({', '.join(inputs)}){returns}"

    def receiver(self, arg_type, self_path):
        kind, payload = tag(arg_type, "type")
        if kind == "generic" and payload == "Self":
            return "self"
        if kind == "borrowed_ref" and tag(payload["type"], "type") == ("generic", "Self"):
            lifetime = f"{payload['lifetime']} " if payload.get("lifetime") else ""
            mutable = "mut " if payload["is_mutable"] else ""
            return f"&{lifetime}{mutable}self"
        return f"self: {self.type(arg_type, self_path)}"

    def type(self, value, self_path):
        kind, payload = tag(value, "type")
        if kind == "resolved_path":
            return self.path(payload, self_path)
        if kind == "generic":
            return payload
        if kind == "primitive":
            return payload
        if kind == "tuple":
            if len(payload) == 1:
                return f"({self.type(payload[0], self_path)},)"
            return f"({', '.join(self.type(t, self_path) for t in payload)})"
        if kind == "slice":
            return f"[{self.type(payload, self_path)}]"
        if kind == "array":
            return f"[{self.type(payload['type'], self_path)}; {payload['len']}]"
        if kind == "borrowed_ref":
            lifetime = f"{payload['lifetime']} " if payload.get("lifetime") else ""
            mutable = "mut " if payload["is_mutable"] else ""
            return f"&{lifetime}{mutable}{self.type(payload['type'], self_path)}"
        if kind == "raw_pointer":
            mutable = "mut" if payload["is_mutable"] else "const"
            return f"*{mutable} {self.type(payload['type'], self_path)}"
        if kind == "impl_trait":
            return f"impl {self.bounds(payload, self_path)}"
        if kind == "dyn_trait":
            traits = [self.poly_trait(t, self_path) for t in payload["traits"]]
            if payload.get("lifetime"):
                traits.append(payload["lifetime"])
            return f"dyn {' + '.join(traits)}"
        if kind == "function_pointer":
            header = payload["header"]
            qualifiers = "unsafe " if header["is_unsafe"] else ""
            qualifiers += self.abi(header["abi"])
            return (
                f"{self.for_lifetimes(payload['generic_params'])}{qualifiers}fn"
                f"{self.signature(payload['sig'], self_path, method=False)}"
            )
        if kind == "qualified_path":
            self_type = self.type(payload["self_type"], self_path)
            args = self.generic_args(payload.get("args"), self_path)
            trait = payload.get("trait")
            if trait is None:
                return f"{self_type}::{payload['name']}{args}"
            return f"<{self_type} as {self.path(trait, self_path)}>::{payload['name']}{args}"
        if kind == "infer":
            return "_"
        if kind == "pat":
            # Pattern types are unstable; the base type is what a reader needs.
            return f"{self.type(payload['type'], self_path)} is _"
        raise Shape(f"type kind {kind!r}")

    def path(self, path, self_path):
        """A named type or trait, by its shortest public path, with its generic arguments."""
        item_id = str(path["id"])
        if item_id in self_path:
            name = self_path[item_id]
        elif item_id in self.canonical:
            name = "::".join(self.canonical[item_id])
        elif item_id in self.paths:
            name = self.known_path(self.paths[item_id]["path"])
        else:
            # Not documented anywhere (a private item): the path as the source wrote it.
            name = path["path"]
        return f"{name}{self.generic_args(path.get('args'), self_path)}"

    def known_path(self, segments):
        if tuple(segments) in self.dependency_paths:
            return self.dependency_paths[tuple(segments)]
        full = "::".join(segments)
        if full in PRELUDE:
            return PRELUDE[full]
        if full in STD_REEXPORTS:
            return STD_REEXPORTS[full]
        if segments[0] in ("core", "alloc", "std") and len(segments) > 3:
            # Operator and iterator traits and collections' iterators are defined in private
            # submodules and re-exported one level up (`core::ops::arith::Add` is
            # `std::ops::Add`, `alloc::vec::into_iter::IntoIter` is `std::vec::IntoIter`).
            if segments[1] in ("ops", "iter", "vec", "slice", "str"):
                return "::".join(["std", segments[1], segments[-1]])
        if segments[0] in ("core", "alloc"):
            # std re-exports core's and alloc's public modules under the same names.
            return "::".join(["std"] + segments[1:])
        return full

    def generic_args(self, args, self_path):
        if args is None:
            return ""
        kind, payload = tag(args, "generic arguments")
        if kind == "angle_bracketed":
            shown = [self.generic_arg(a, self_path) for a in payload["args"]]
            shown += [self.constraint(c, self_path) for c in payload["constraints"]]
            return f"<{', '.join(shown)}>" if shown else ""
        if kind == "parenthesized":
            inputs = ", ".join(self.type(t, self_path) for t in payload["inputs"])
            output = payload.get("output")
            returns = f" -> {self.type(output, self_path)}" if output is not None else ""
            return f"({inputs}){returns}"
        if kind == "return_type_notation":
            return "(..)"
        raise Shape(f"generic arguments kind {kind!r}")

    def generic_arg(self, arg, self_path):
        kind, payload = tag(arg, "generic argument")
        if kind == "lifetime":
            return payload
        if kind == "type":
            return self.type(payload, self_path)
        if kind == "const":
            return payload.get("value") or payload["expr"]
        if kind == "infer":
            return "_"
        raise Shape(f"generic argument kind {kind!r}")

    def constraint(self, constraint, self_path):
        name = constraint["name"] + self.generic_args(constraint.get("args"), self_path)
        kind, payload = tag(constraint["binding"], "associated item constraint")
        if kind == "equality":
            return f"{name} = {self.term(payload, self_path)}"
        if kind == "constraint":
            return f"{name}: {self.bounds(payload, self_path)}"
        raise Shape(f"associated item constraint kind {kind!r}")

    def term(self, term, self_path):
        kind, payload = tag(term, "term")
        if kind == "type":
            return self.type(payload, self_path)
        if kind == "constant":
            return payload.get("value") or payload["expr"]
        raise Shape(f"term kind {kind!r}")

    def bounds(self, bounds, self_path):
        return " + ".join(self.bound(b, self_path) for b in bounds)

    def bound(self, bound, self_path):
        kind, payload = tag(bound, "bound")
        if kind == "trait_bound":
            modifier = {"none": "", "maybe": "?", "maybe_const": "~const "}.get(payload["modifier"])
            if modifier is None:
                raise Shape(f"trait bound modifier {payload['modifier']!r}")
            return (
                f"{self.for_lifetimes(payload['generic_params'])}{modifier}"
                f"{self.path(payload['trait'], self_path)}"
            )
        if kind == "outlives":
            return payload
        if kind == "use":
            captured = []
            for arg in payload:
                _, name = tag(arg, "precise capturing argument")
                captured.append(name)
            return f"use<{', '.join(captured)}>"
        raise Shape(f"bound kind {kind!r}")

    def poly_trait(self, poly, self_path):
        return f"{self.for_lifetimes(poly['generic_params'])}{self.path(poly['trait'], self_path)}"

    def for_lifetimes(self, params):
        if not params:
            return ""
        return f"for<{', '.join(p['name'] for p in params)}> "

    def params(self, generics, defaults=True):
        """`<'a, T: Bound = Default>`; an impl's parameters have no defaults."""
        shown = []
        for param in generics["params"]:
            kind, payload = tag(param["kind"], "generic parameter")
            if kind == "lifetime":
                outlives = payload.get("outlives") or []
                shown.append(param["name"] + (f": {' + '.join(outlives)}" if outlives else ""))
            elif kind == "type":
                if payload.get("is_synthetic"):
                    continue  # `impl Trait` in argument position, shown in the argument
                text = param["name"]
                if payload["bounds"]:
                    text += f": {self.bounds(payload['bounds'], {})}"
                if defaults and payload.get("default") is not None:
                    text += f" = {self.type(payload['default'], {})}"
                shown.append(text)
            elif kind == "const":
                text = f"const {param['name']}: {self.type(payload['type'], {})}"
                if defaults and payload.get("default") is not None:
                    text += f" = {payload['default']}"
                shown.append(text)
            else:
                raise Shape(f"generic parameter kind {kind!r}")
        return f"<{', '.join(shown)}>" if shown else ""

    def where_clause(self, generics):
        shown = []
        for predicate in generics["where_predicates"]:
            kind, payload = tag(predicate, "where predicate")
            if kind == "bound_predicate":
                bounds = self.bounds(payload["bounds"], {})
                shown.append(
                    f"{self.for_lifetimes(payload['generic_params'])}"
                    f"{self.type(payload['type'], {})}: {bounds}"
                )
            elif kind == "lifetime_predicate":
                shown.append(f"{payload['lifetime']}: {' + '.join(payload['outlives'])}")
            elif kind == "eq_predicate":
                shown.append(f"{self.type(payload['lhs'], {})} == {self.term(payload['rhs'], {})}")
            else:
                raise Shape(f"where predicate kind {kind!r}")
        return f" where {', '.join(shown)}" if shown else ""


def main():
    if len(sys.argv) < 2:
        print("usage: public_api.py <crate>.json [<dependency>.json ...] (rustdoc's JSON output)",
              file=sys.stderr)
        return 2
    source, *dependencies = sys.argv[1:]
    current = None
    try:
        listers = []
        for current in dependencies + [source]:
            listers.append(Lister(load(current), listers[:]))
        lines = listers[-1].listing()
    except Unreadable as error:
        print(f"public_api.py: {error}", file=sys.stderr)
        return 2
    except (Shape, KeyError, TypeError, AttributeError) as error:
        # The format version matched, yet something is not where it should be.
        print(
            f"public_api.py: {current} has a shape this lister does not know "
            f"({type(error).__name__}: {error}); update scripts/public_api.py",
            file=sys.stderr,
        )
        return 2
    sys.stdout.write("".join(line + "\n" for line in lines))
    return 0


class Unreadable(Exception):
    """A JSON file this lister cannot read; the message says which and why."""


def load(path):
    """The rustdoc JSON in `path`, checked to be in a format this lister reads."""
    try:
        with open(path, encoding="utf-8") as file:
            krate = json.load(file)
    except (OSError, ValueError) as error:
        raise Unreadable(f"cannot read {path} as JSON ({error})") from None
    version = krate.get("format_version") if isinstance(krate, dict) else None
    if version not in KNOWN_FORMAT_VERSIONS:
        known = ", ".join(str(v) for v in sorted(KNOWN_FORMAT_VERSIONS))
        raise Unreadable(
            f"{path} is rustdoc JSON format_version {version}, and this lister reads only "
            f"{known}; use a toolchain that writes it, or update scripts/public_api.py for the "
            f"new format (see rustdoc-types' changelog)"
        )
    return krate


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Generate a large, valid bprof profile set for benchmarking.

    python3 bench/gen_profiles.py OUT_DIR [--profiles N] [--vms N] [--bastions N]
                                          [--tenants N] [--files N] [--seed N]

Defaults: 10,000 profiles, 1,000 vms, 50 bastions, 10 tenants, in 20 files
(bench-00.yaml .. bench-19.yaml). Standard library only; the output is deterministic for a
given seed. Every GUID is fake (random) but well-formed (8-4-4-4-12 hex).

The set exercises what real sets use: tenants with and without `login`, bastions in their
tenant's subscription or a hub subscription, standard and premium SKUs; vms by name +
resource_group (some with their own subscription or tenant) and by resource_id; profiles in
rdp (most), ssh with `auth_type: aad`, and tunnel with `resource_port`; `defaults` in the first
file; `extends` in one profile in ten (parents often in another file); references across files.

On stdout it prints `key=value` lines (counts, and `sample_profile=NAME`, a profile that uses
`extends`, for `bprof plan`).
"""

import argparse
import json
import os
import random
import sys

TENANT_NAMES = [
    "contoso", "fabrikam", "northwind", "adventure-works", "tailspin",
    "wingtip", "litware", "proseware", "woodgrove", "alpine-ski",
]
REGIONS = ["weu", "neu", "eus", "wus2", "sea", "uks", "frc", "gwc"]
WIN_ROLES = ["jumpbox", "rdsh", "build", "sql", "iis", "admin", "dc", "erp"]
LINUX_ROLES = ["app", "web", "pgsql", "redis", "kafka", "k8s", "etl", "api"]
TUNNEL_PORTS = [5432, 1433, 6379, 9092, 443, 8443, 3306, 22]


def guid(rng):
    h = "%032x" % rng.getrandbits(128)
    return "%s-%s-%s-%s-%s" % (h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])


def q(s):
    """A YAML double-quoted scalar (JSON string syntax is valid YAML for ASCII text)."""
    return json.dumps(s)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir")
    ap.add_argument("--profiles", type=int, default=10000)
    ap.add_argument("--vms", type=int, default=1000)
    ap.add_argument("--bastions", type=int, default=50)
    ap.add_argument("--tenants", type=int, default=10)
    ap.add_argument("--files", type=int, default=20)
    ap.add_argument("--seed", type=int, default=20240601)
    a = ap.parse_args()
    if a.tenants < 1 or a.bastions < a.tenants or a.vms < 2 * a.tenants or a.profiles < 1:
        sys.exit("need tenants >= 1, bastions >= tenants, vms >= 2 * tenants, profiles >= 1")
    if a.files < 1:
        sys.exit("need files >= 1")
    rng = random.Random(a.seed)
    os.makedirs(a.out_dir, exist_ok=True)
    nfiles = a.files
    sections = [{"tenants": [], "bastions": [], "vms": [], "profiles": []} for _ in range(nfiles)]

    # --- tenants: tenant t lives in file t % nfiles
    tenants = []
    for t in range(a.tenants):
        name = TENANT_NAMES[t] if t < len(TENANT_NAMES) else "tenant-%03d" % t
        sub = guid(rng)
        tenants.append({"name": name, "sub": sub})
        out = ["  %s:" % name,
               "    description: %s" % q("%s (Entra ID tenant %d)" % (name.title(), t)),
               "    id: %s" % guid(rng),
               "    subscription: %s" % sub]
        if t % 3 == 1:
            out.append("    login: [--use-device-code]")
        sections[t % nfiles]["tenants"].append(out)

    # --- bastions: bastion b belongs to tenant b % T; lives in file (b + 3) % nfiles
    bastions = []
    by_tenant_bastions = [[] for _ in tenants]
    hub_subs = [guid(rng) for _ in tenants]
    for b in range(a.bastions):
        t = b % a.tenants
        region = REGIONS[(b // a.tenants) % len(REGIONS)]
        name = "bas-%s-%s-%02d" % (tenants[t]["name"], region, b // a.tenants)
        bastions.append(name)
        by_tenant_bastions[t].append(name)
        out = ["  %s:" % name,
               "    tenant: %s" % tenants[t]["name"]]
        if b % 2 == 0:  # hub and spoke: bastion in a connectivity subscription
            out.append("    subscription: %s" % hub_subs[t])
        out += ["    resource_group: rg-%s-hub-%s" % (tenants[t]["name"], region),
                "    name: bas-hub-%s-%02d" % (region, b // a.tenants),
                "    sku: %s" % ("premium" if b % 5 == 0 else "standard")]
        if b % 5 == 0:
            out.append("    ip_connect: true")
        sections[(b + 3) % nfiles]["bastions"].append(out)

    # --- vms: vm v in tenant v % T; windows for 70%, linux otherwise; file v % nfiles
    win_vms = [[] for _ in tenants]
    linux_vms = [[] for _ in tenants]
    for v in range(a.vms):
        t = v % a.tenants
        linux = (v // a.tenants) % 10 >= 7
        role = (LINUX_ROLES if linux else WIN_ROLES)[(v // a.tenants) % 8]
        env = ["prod", "dev", "test", "stage"][(v // 7) % 4]
        key = "%s-%s-%s-%04d" % (tenants[t]["name"], env, role, v)
        (linux_vms if linux else win_vms)[t].append(key)
        rg = "rg-%s-%s-%s" % (tenants[t]["name"], env, role)
        azname = "vm-%s-%s-%04d" % (env, role, v)
        out = ["  %s:" % key]
        if v % 3 == 0:  # by resource id (own subscription)
            out.append("    resource_id: /subscriptions/%s/resourceGroups/%s/providers/"
                       "Microsoft.Compute/virtualMachines/%s" % (guid(rng), rg, azname))
        else:  # by name + resource group
            out += ["    resource_group: %s" % rg, "    name: %s" % azname]
            if v % 3 == 1:
                out.append("    tenant: %s" % tenants[t]["name"])
            if v % 9 == 2:
                out.append("    subscription: %s" % guid(rng))
        out.append("    os: %s" % ("linux" if linux else "windows"))
        if not linux and v % 4 == 0:
            out.append("    computer_name: %s" % ("%s%04d" % (role, v)).upper())
        sections[v % nfiles]["vms"].append(out)
    for t in range(a.tenants):
        if not win_vms[t] or not linux_vms[t]:
            sys.exit("too few vms: every tenant needs a windows and a linux vm")

    # --- profiles: profile p in file p % nfiles. One in ten (p % 10 == 5) extends p - 5.
    def mode_of(p):
        r = p % 100
        return "rdp" if r < 80 else ("ssh" if r < 92 else "tunnel")

    profile_names = []
    profile_mode = []
    profile_tenant = []
    sample = None
    for p in range(a.profiles):
        extends = p % 10 == 5
        parent = p - 5 if extends else None
        mode = profile_mode[parent] if extends else mode_of(p)
        # a child stays in its parent's tenant (it inherits the parent's bastion)
        t = profile_tenant[parent] if extends else (p * 7 + p // 100) % a.tenants
        pool = win_vms[t] if mode == "rdp" else linux_vms[t]
        vm = pool[(p * 31 + p // a.tenants) % len(pool)]
        bastion = by_tenant_bastions[t][p % len(by_tenant_bastions[t])]
        name = "%s-%s-%05d" % (vm.rsplit("-", 1)[0], mode, p)
        profile_names.append(name)
        profile_mode.append(mode)
        profile_tenant.append(t)
        out = ["  %s:" % name,
               "    description: %s" % q("%s to %s through %s" % (mode, vm, bastion))]
        if extends:
            out.append("    extends: %s" % profile_names[parent])
            out.append("    vm: %s" % vm)
            if mode == "rdp":
                out.append("    configure: true")
            if sample is None and p > a.profiles // 2:
                sample = name
        else:
            out += ["    bastion: %s" % bastion, "    vm: %s" % vm, "    mode: %s" % mode]
            if mode == "rdp":
                out.append("    enable_mfa: true")
                if p % 4 == 0:
                    out.append("    auth_type: aad")
                if p % 6 == 0:
                    out.append("    local_port: auto")
                if p % 5 == 0:
                    out += ["    rdp:",
                            "      screen: fullscreen",
                            "      drives: false",
                            "      audio: local",
                            "      properties:",
                            '        "smart sizing:i": 1']
            elif mode == "ssh":
                out.append("    auth_type: aad")
                if p % 3 == 0:
                    out.append('    ssh_args: [-L, "8080:localhost:80"]')
            else:
                port = TUNNEL_PORTS[p % len(TUNNEL_PORTS)]
                out += ["    resource_port: %d" % port,
                        "    local_port: %d" % (10000 + port % 10000 + p % 97),
                        "    timeout: 3600"]
        sections[p % nfiles]["profiles"].append(out)
    if sample is None:
        sample = profile_names[-1]

    # --- write
    total = 0
    for f in range(nfiles):
        path = os.path.join(a.out_dir, "bench-%02d.yaml" % f)
        text = ["# Generated by bench/gen_profiles.py (seed %d); every GUID is fake." % a.seed,
                "version: 1"]
        for sec in ("tenants", "bastions", "vms", "profiles"):
            if sections[f][sec]:
                text.append("")
                text.append("%s:" % sec)
                for entry in sections[f][sec]:
                    text.extend(entry)
        if f == 0:
            text += ["",
                     "# applied under every profile; a profile's own value wins",
                     "defaults:",
                     "  rdp:",
                     "    screen: window",
                     "    width: 1920",
                     "    height: 1080",
                     "    multimon: false",
                     "    clipboard: true"]
        data = "\n".join(text) + "\n"
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(data)
        total += len(data.encode())

    print("dir=%s" % a.out_dir)
    print("files=%d" % nfiles)
    print("tenants=%d" % a.tenants)
    print("bastions=%d" % a.bastions)
    print("vms=%d" % a.vms)
    print("profiles=%d" % a.profiles)
    print("bytes=%d" % total)
    print("sample_profile=%s" % sample)


if __name__ == "__main__":
    main()

"""engine.networks.nftables against the real kernel: a private table applied and deleted through the
module, in-process (libnftables) and through the `nft` fallback."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import pytest
import trio

from engine import errors
from engine.networks import nftables
from engine.networks.nftables import Dnat, NatNetwork, NftTable

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (nftables)"),
    pytest.mark.skipif(shutil.which("nft") is None, reason="needs the nft binary"),
]


def _nft_tables() -> set[str]:
    out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True).stdout
    return {line.strip() for line in out.splitlines() if line.strip()}


@pytest.fixture
def table_name():
    name = f"pyengine_test_{uuid.uuid4().hex[:10]}"
    yield name
    subprocess.run(["nft", "delete", "table", "inet", name], capture_output=True)
    assert f"table inet {name}" not in _nft_tables()


@pytest.mark.parametrize("use_library", [True, False], ids=["libnftables", "nft-binary"])
def test_apply_and_delete_private_table(table_name, use_library):
    if use_library and nftables._load_lib() is None:
        pytest.skip("libnftables.so.1 not loadable")
    entry = f"table inet {table_name}"
    assert entry not in _nft_tables()
    table = NftTable(table_name, use_library=use_library)
    assert table.in_process is use_library
    nets = [NatNetwork(bridge="pyetestbr0", subnet="10.254.77.0/24")]
    dnat = Dnat("tcp", "", 40999, "10.254.77.2", 80)

    async def main():
        await table.apply(nets, [dnat])
        assert entry in _nft_tables()
        listed = subprocess.run(["nft", "list", "table", "inet", table_name], capture_output=True,
                                text=True, check=True).stdout
        assert "dport 40999 dnat ip to 10.254.77.2:80" in listed
        assert "masquerade" in listed
        # re-applying replaces the table atomically (old rules gone, not duplicated)
        await table.apply(nets, [])
        listed = subprocess.run(["nft", "list", "table", "inet", table_name], capture_output=True,
                                text=True, check=True).stdout
        assert "dnat" not in listed
        assert listed.count("masquerade") == 1
        # a bad ruleset fails as a whole with nft's message, leaving the previous table intact
        with pytest.raises(errors.SystemError_) as info:
            await table.apply(nets, [Dnat("tcp", "", 40999, "not-an-ip", 80)])
        assert "nftables:" in str(info.value) and "dnat ip to not-an-ip:80" in str(info.value)
        assert entry in _nft_tables()
        await table.delete()
        assert entry not in _nft_tables()
        # deleting again is harmless; applying after delete works (fresh context)
        await table.delete()
        await table.apply(nets, [])
        assert entry in _nft_tables()
        await table.delete()
        assert entry not in _nft_tables()

    trio.run(main)

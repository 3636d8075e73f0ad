"""The Stellar networks by passphrase, and where the local network deploys FlowFi."""

LOCAL_PASSPHRASE = "Standalone Network ; February 2017"
TESTNET_PASSPHRASE = "Test SDF Network ; September 2015"

# The local network (`flowfi devnet`) deploys FlowFi here, so that a worker with default settings finds it.
LOCAL_CONTRACT_ID = "CCR2RRS64MGIDMQUAWN3JOPTLWOJVDNN7WGCHNGZCVNGYBUXRV5QHFIG"
# Its Stellar RPC's port, where the commands look for an RPC server by default.
LOCAL_RPC_PORT = 8000

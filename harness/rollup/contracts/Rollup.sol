// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice The Groth16 verifier that snarkjs exports for the batch-commitment circuit (one public input).
interface IGroth16Verifier {
    function verifyProof(
        uint256[2] calldata a,
        uint256[2][2] calldata b,
        uint256[2] calldata c,
        uint256[1] calldata publicSignals
    ) external view returns (bool);
}

/// @title Rollup: commit -> prove -> execute, one batch at a time, in order (ZKsync-shaped, minimal).
/// @notice A measurement target, not a production rollup. The proof binds the batch commitment
///         (chain id, this contract's address, batch number, previous root, new root, keccak of the
///         batch data); it does NOT prove that newRoot is the correct execution of the data. Only the
///         sequencer commits; only the prover or the sequencer proves and executes (both fixed at
///         deployment). See harness/rollup/zk/README.md.
contract Rollup {
    struct Batch {
        bytes32 prevRoot;
        bytes32 newRoot;
        bytes32 dataHash;
        uint64 dataLength;
        uint64 committedBlock;
        uint64 committedAt;
        uint64 provenBlock;
        uint64 provenAt;
        uint64 executedBlock;
        uint64 executedAt;
    }

    address public immutable sequencer;
    address public immutable prover;
    IGroth16Verifier public immutable verifier;
    bytes32 public immutable genesisRoot;

    uint256 public constant MAX_BLOBS = 6;

    uint256 public totalCommitted;
    uint256 public totalProven;
    uint256 public totalExecuted;

    mapping(uint256 => Batch) private _batches;

    event BlockCommit(uint256 indexed batchNumber, bytes32 prevRoot, bytes32 newRoot, bytes32 dataHash, uint256 dataLength);
    event BlockProven(uint256 indexed batchNumber, uint256 commitment);
    event BlockExecuted(uint256 indexed batchNumber, bytes32 newRoot);

    constructor(address verifier_, address sequencer_, address prover_, bytes32 genesisRoot_) {
        require(verifier_.code.length > 0, "Rollup: verifier has no code");
        require(sequencer_ != address(0), "Rollup: zero sequencer");
        require(prover_ != address(0), "Rollup: zero prover");
        verifier = IGroth16Verifier(verifier_);
        sequencer = sequencer_;
        prover = prover_;
        genesisRoot = genesisRoot_;
    }

    modifier onlyProverOrSequencer() {
        require(msg.sender == prover || msg.sender == sequencer, "Rollup: caller is not the prover or sequencer");
        _;
    }

    /// @notice The circuit's public input for a batch of the deployment (chainId, rollup):
    ///         keccak256(abi.encode(chainId, rollup, n, prevRoot, newRoot, dataHash)) >> 3
    ///         (253 bits, always below the BN254 scalar field order).
    function commitmentFor(
        uint256 chainId,
        address rollup,
        uint256 batchNumber,
        bytes32 prevRoot,
        bytes32 newRoot,
        bytes32 dataHash
    ) public pure returns (uint256) {
        return uint256(keccak256(abi.encode(chainId, rollup, batchNumber, prevRoot, newRoot, dataHash))) >> 3;
    }

    /// @notice The public input of a batch on THIS deployment: chain id = block.chainid, rollup = address(this),
    ///         so a proof made for one deployment (or chain) does not verify on another.
    function commitmentOf(uint256 batchNumber, bytes32 prevRoot, bytes32 newRoot, bytes32 dataHash)
        public
        view
        returns (uint256)
    {
        return commitmentFor(block.chainid, address(this), batchNumber, prevRoot, newRoot, dataHash);
    }

    /// @notice The public input of a committed batch, derived from its stored record.
    function batchCommitment(uint256 batchNumber) public view returns (uint256) {
        Batch storage b = _batches[batchNumber];
        require(b.committedBlock != 0, "Rollup: batch not committed");
        return commitmentOf(batchNumber, b.prevRoot, b.newRoot, b.dataHash);
    }

    function batches(uint256 batchNumber) external view returns (Batch memory) {
        return _batches[batchNumber];
    }

    /// @notice The state root after the last committed batch (the genesis root before any).
    function lastCommittedRoot() public view returns (bytes32) {
        return totalCommitted == 0 ? genesisRoot : _batches[totalCommitted].newRoot;
    }

    function commitBatch(uint256 batchNumber, bytes32 prevRoot, bytes32 newRoot, bytes calldata data) external {
        _commit(batchNumber, prevRoot, newRoot, keccak256(data), data.length);
    }

    /// @notice EIP-4844 path: the batch data travels in the transaction's first `blobCount` blobs.
    ///         dataHash = keccak256(abi.encodePacked(versioned hash of blob 0, ..., blob blobCount-1)).
    ///         `dataLength` is the payload length the sequencer declares (not checked on-chain).
    function commitBatchBlobs(uint256 batchNumber, bytes32 prevRoot, bytes32 newRoot, uint256 blobCount, uint256 dataLength)
        external
    {
        require(blobCount > 0 && blobCount <= MAX_BLOBS, "Rollup: blobCount out of range");
        bytes32[] memory hashes = new bytes32[](blobCount);
        for (uint256 i = 0; i < blobCount; i++) {
            hashes[i] = blobhash(i);
            require(hashes[i] != bytes32(0), "Rollup: missing blob");
        }
        require(blobhash(blobCount) == bytes32(0), "Rollup: more blobs attached than blobCount");
        _commit(batchNumber, prevRoot, newRoot, keccak256(abi.encodePacked(hashes)), dataLength);
    }

    function _commit(uint256 batchNumber, bytes32 prevRoot, bytes32 newRoot, bytes32 dataHash, uint256 dataLength)
        private
    {
        require(msg.sender == sequencer, "Rollup: caller is not the sequencer");
        require(_batches[batchNumber].committedBlock == 0, "Rollup: batch already committed");
        require(batchNumber == totalCommitted + 1, "Rollup: batch number out of order");
        require(prevRoot == lastCommittedRoot(), "Rollup: prevRoot does not match the last committed root");
        _batches[batchNumber] = Batch({
            prevRoot: prevRoot,
            newRoot: newRoot,
            dataHash: dataHash,
            dataLength: uint64(dataLength),
            committedBlock: uint64(block.number),
            committedAt: uint64(block.timestamp),
            provenBlock: 0,
            provenAt: 0,
            executedBlock: 0,
            executedAt: 0
        });
        totalCommitted = batchNumber;
        emit BlockCommit(batchNumber, prevRoot, newRoot, dataHash, dataLength);
    }

    function proveBatch(uint256 batchNumber, uint256[2] calldata a, uint256[2][2] calldata b, uint256[2] calldata c)
        external
        onlyProverOrSequencer
    {
        require(batchNumber == totalProven + 1, "Rollup: batch number out of order");
        Batch storage rec = _batches[batchNumber];
        require(rec.committedBlock != 0, "Rollup: batch not committed");
        uint256 commitment = commitmentOf(batchNumber, rec.prevRoot, rec.newRoot, rec.dataHash);
        require(verifier.verifyProof(a, b, c, [commitment]), "Rollup: invalid proof");
        rec.provenBlock = uint64(block.number);
        rec.provenAt = uint64(block.timestamp);
        totalProven = batchNumber;
        emit BlockProven(batchNumber, commitment);
    }

    function executeBatch(uint256 batchNumber) external onlyProverOrSequencer {
        require(batchNumber == totalExecuted + 1, "Rollup: batch number out of order");
        Batch storage rec = _batches[batchNumber];
        require(rec.provenBlock != 0, "Rollup: batch not proven");
        rec.executedBlock = uint64(block.number);
        rec.executedAt = uint64(block.timestamp);
        totalExecuted = batchNumber;
        emit BlockExecuted(batchNumber, rec.newRoot);
    }
}

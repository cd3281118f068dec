// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// The part of ERC-20 the vault uses.
interface IERC20Vault {
    function decimals() external view returns (uint8);
    function balanceOf(address holder) external view returns (uint256);
    function transfer(address to, uint256 amount) external returns (bool);
    function transferFrom(address from, address to, uint256 amount) external returns (bool);
}

/// @title l2x settlement: the vault holding l2x's collateral, the L1 queue of deposits and
///        forced withdrawals, and the state roots of l2x's epochs, committed one batch at a time.
/// @notice docs/SETTLEMENT.md specifies the leaf, the tree, the batch and the queue this
///         contract checks. Only the submitter commits; only the next index; only on top of
///         the last root; only with data that hashes to the batch's data hash; only consuming
///         the queue in order, up to an entry it holds, with the rolling hash it computed.
///         Committing a batch pays what it lists: refunds of refused deposits, honoured forced
///         withdrawals and L2 withdrawals become claims that `claim()` pays out.
contract L2xSettlement {
    struct Position {
        uint32 instrument;
        int64 size;
        int128 cost;
        int128 fundingIndex;
    }

    struct AccountLeaf {
        uint64 account;
        int64 collateral;
        Position[] positions;
    }

    /// A batch's header fields (batch format 4), as `commitBatch` takes them.
    struct BatchHeader {
        uint64 index;
        uint64 firstSeq;
        uint64 lastSeq;
        uint64 epochTs;
        bytes32 prevRoot;
        bytes32 newRoot;
        bytes32 dataHash;
        bytes32 marketHash;
        uint64 queueCount;
        bytes32 queueHash;
    }

    /// One instrument's market state, as a batch commits it (`h.marketHash` is
    /// `keccak256(abi.encode(markets))`).
    struct Market {
        uint32 instrument;
        int64 mark;
        int128 fundingIndex;
        int64 tickValue;
    }

    /// An amount an account withdrew on L2, to be paid to its owner.
    struct Withdrawal {
        uint64 account;
        uint64 amount;
    }

    /// What a queue entry is; its number is the `kind` byte of the rolling hash.
    enum Kind {
        Deposit,
        InsuranceDeposit,
        ForcedWithdrawal
    }

    /// One queue entry (two storage slots).
    struct Entry {
        address from;
        uint64 amount;
        Kind kind;
        uint64 account;
        uint64 requestedAt;
    }

    /// What an address may claim, and from when.
    struct Claim {
        uint128 amount;
        uint64 availableAt;
    }

    /// The deployment's parameters, all immutable.
    struct Config {
        address submitter;
        address token;
        uint64 minDeposit;
        uint64 claimDelay;
        uint64 forcedDeadline;
        address feeRecipient;
        address insuranceRecipient;
        uint64 insuranceExitDelay;
    }

    /// The fee account's leaf key; it cannot be deposited to.
    uint64 public constant FEE_ACCOUNT = type(uint64).max - 1;
    /// The insurance fund's leaf key: the account of `depositInsurance`'s entries.
    uint64 public constant INSURANCE_ACCOUNT = type(uint64).max;
    /// The most the vault may hold for L2 (committed and queued deposits, less withdrawals):
    /// 2^62 base units, the state machine's bound on what its ledger holds.
    uint256 public constant MAX_HELD = 1 << 62;

    /// The only address that may commit.
    address public immutable submitter;
    /// The collateral token (6 decimals: one base unit is one micro-dollar).
    address public immutable token;
    /// The least a deposit may be, in base units, at least 1 (a queue entry costs the
    /// operator gas).
    uint64 public immutable minDeposit;
    /// Seconds between a claim's last credit and when it can be paid.
    uint64 public immutable claimDelay;
    /// Seconds a queue entry may wait unprocessed before anyone may `freeze()`.
    uint64 public immutable forcedDeadline;
    /// Where the fee account's withdrawals and escape are paid.
    address public immutable feeRecipient;
    /// Where the insurance fund's escape is paid.
    address public immutable insuranceRecipient;
    /// Seconds after a freeze before the insurance fund and the fee account may escape.
    uint64 public immutable insuranceExitDelay;

    /// The index of the last committed batch (0: none).
    uint64 public lastIndex;
    /// The root after the last committed batch (0x00…00 before the first).
    bytes32 public lastRoot;
    /// The root after each committed batch.
    mapping(uint64 => bytes32) public roots;
    /// Each committed batch's commitment: `keccak256(abi.encode(h, withdrawals, rejected))`
    /// of its `commitBatch` arguments (the data is bound through `h.dataHash`), or for a batch
    /// in blobs `keccak256(abi.encode(h, withdrawals, rejected, versionedHashes))`.
    mapping(uint64 => bytes32) public commitments;

    /// Entries queued (the last index; entries are numbered from 1).
    uint64 public queueLength;
    /// Entries the committed batches consumed (the last one's index).
    uint64 public processed;
    /// Each entry.
    mapping(uint64 => Entry) public entries;
    /// The rolling hash after each entry (`queueHashes(0)` = 0x00…00).
    mapping(uint64 => bytes32) public queueHashes;
    /// Each account's L1 owner: its first depositor.
    mapping(uint64 => address) public owners;
    /// What each address may claim.
    mapping(address => Claim) public claims;

    /// Tokens backing the committed L2 state: deposits the batches credited, less what they
    /// paid out.
    uint256 public l2Total;
    /// Tokens of queued deposits no batch has consumed yet.
    uint256 public pendingDeposits;
    /// Tokens credited to claims and not yet claimed.
    uint256 public totalClaimable;
    /// Whether the contract is frozen: no more commits, deposits or forced requests.
    bool public frozen;
    /// The last queue entry `refundQueued` went through (0: none).
    uint64 public refunded;
    /// The market state committed with the last root (its `marketHash`).
    bytes32 public lastMarketHash;
    /// When the contract was frozen (0: not frozen).
    uint64 public frozenAt;
    /// Whether each account (leaf key) has escaped.
    mapping(uint64 => bool) public escaped;

    event BatchCommitted(
        uint64 indexed index,
        bytes32 newRoot,
        bytes32 dataHash,
        uint64 firstSeq,
        uint64 lastSeq,
        uint64 epochTs,
        uint64 queueCount,
        bytes32 commitment
    );
    /// A batch committed by `commitBatchBlobs`: the versioned hashes of its blobs, in order.
    event BatchBlobs(uint64 indexed index, bytes32[] versionedHashes);
    event Queued(
        uint64 indexed index, Kind kind, uint64 indexed account, uint64 amount, address indexed from, bytes32 queueHash
    );
    event OwnerBound(uint64 indexed account, address indexed owner);
    event Credited(address indexed to, uint64 amount, uint64 availableAt);
    event Claimed(address indexed to, uint256 amount);
    event Frozen(uint64 oldestWaiting, uint64 requestedAt);
    event Escaped(uint64 indexed account, address indexed payee, int256 equity, uint256 paid);

    error NotSubmitter(address sender);
    error WrongIndex(uint64 expected, uint64 got);
    error WrongPreviousRoot(bytes32 expected, bytes32 got);
    error WrongDataHash(bytes32 expected, bytes32 got);
    error NoBlobs();
    error QueueCountOutOfRange(uint64 processed, uint64 queueLength, uint64 got);
    error WrongQueueHash(uint64 count, bytes32 expected, bytes32 got);
    error BadRejected(uint256 position);
    error NoOwner(uint64 account);
    error BadWithdrawal(uint256 position);
    error WithdrawalsExceedDeposits(uint256 held, uint256 needed);
    error WrongDecimals(uint8 decimals);
    error ReservedAccount(uint64 account);
    error DepositTooSmall(uint64 minimum, uint64 got);
    error DepositCapReached(uint256 held, uint64 amount);
    error NotOwner(uint64 account, address owner, address sender);
    error BadAmount(uint64 amount);
    error TokenTransferFailed();
    error NothingToClaim();
    error ClaimNotYet(uint64 availableAt);
    error IsFrozen();
    error NotOverdue(uint64 oldestWaiting, uint64 dueAt);
    error NotFrozen();
    error WrongMarketState(bytes32 expected, bytes32 got);
    error BadProof(uint64 account);
    error AlreadyEscaped(uint64 account);
    error InsuranceNotYet(uint64 availableAt);
    error Unlisted(uint64 account, uint32 instrument);
    error NoMark(uint64 account, uint32 instrument);
    error BadConfig();

    constructor(Config memory c) {
        // Delays far past any use (136 years) would let a sum of times overflow and revert.
        uint64 most = type(uint32).max;
        if (
            c.minDeposit == 0 || c.forcedDeadline == 0 || c.claimDelay > most || c.forcedDeadline > most
                || c.insuranceExitDelay > most
        ) {
            revert BadConfig();
        }
        submitter = c.submitter;
        token = c.token;
        minDeposit = c.minDeposit;
        claimDelay = c.claimDelay;
        forcedDeadline = c.forcedDeadline;
        feeRecipient = c.feeRecipient;
        insuranceRecipient = c.insuranceRecipient;
        insuranceExitDelay = c.insuranceExitDelay;
        uint8 d = IERC20Vault(c.token).decimals();
        if (d != 6) revert WrongDecimals(d);
    }

    // ----- the L1 queue -----

    /// Pulls `amount` tokens from the sender (it must have approved them) and queues them as
    /// a deposit to `account`. The first deposit to an account binds it to its sender: only
    /// that address may ask a forced withdrawal for it or be paid its withdrawals. Anyone may
    /// deposit to a bound account (a gift to its owner).
    function deposit(uint64 account, uint64 amount) external {
        if (account >= FEE_ACCOUNT) revert ReservedAccount(account);
        if (owners[account] == address(0)) {
            owners[account] = msg.sender;
            emit OwnerBound(account, msg.sender);
        }
        _deposit(Kind.Deposit, account, amount);
    }

    /// Pulls `amount` tokens from the sender into the insurance fund (a gift: nobody owns it).
    function depositInsurance(uint64 amount) external {
        _deposit(Kind.InsuranceDeposit, INSURANCE_ACCOUNT, amount);
    }

    /// The owner of `account` asks the exchange to pay out `amount` of its collateral. The
    /// next batches must consume it by `requestedAt + forcedDeadline`: paid, or refused for
    /// margin (listed in the batch's refused entries); otherwise anyone may `freeze()`.
    function requestForcedWithdrawal(uint64 account, uint64 amount) external {
        if (frozen) revert IsFrozen();
        address owner = owners[account];
        if (msg.sender != owner) revert NotOwner(account, owner, msg.sender);
        if (amount == 0 || amount > uint64(type(int64).max)) revert BadAmount(amount);
        _queue(Kind.ForcedWithdrawal, account, amount);
    }

    function _deposit(Kind kind, uint64 account, uint64 amount) private {
        if (frozen) revert IsFrozen();
        if (amount < minDeposit) revert DepositTooSmall(minDeposit, amount);
        uint256 held = l2Total + pendingDeposits;
        if (held + amount > MAX_HELD) revert DepositCapReached(held, amount);
        uint256 before = IERC20Vault(token).balanceOf(address(this));
        _call(abi.encodeCall(IERC20Vault.transferFrom, (msg.sender, address(this), amount)));
        // A token that delivers less than it was asked (a fee on transfer) is not supported.
        if (IERC20Vault(token).balanceOf(address(this)) != before + amount) revert TokenTransferFailed();
        pendingDeposits += amount;
        _queue(kind, account, amount);
    }

    function _queue(Kind kind, uint64 account, uint64 amount) private {
        uint64 index = queueLength + 1;
        uint64 now_ = uint64(block.timestamp);
        entries[index] = Entry(msg.sender, amount, kind, account, now_);
        bytes32 h = keccak256(abi.encodePacked(queueHashes[index - 1], uint8(kind), index, account, amount, msg.sender, now_));
        queueHashes[index] = h;
        queueLength = index;
        emit Queued(index, kind, account, amount, msg.sender, h);
    }

    // ----- batches -----

    /// Commits a batch whose data is posted as calldata: its header's fields, the withdrawals
    /// it lists, the queue entries it refused (increasing) and its data, which must hash to
    /// `h.dataHash`. Consumes the queue from `processed + 1` to `h.queueCount`: a deposit is
    /// backed (or refunded to its depositor if refused), a forced withdrawal is paid to the
    /// owner (or nothing if refused); then each withdrawal is paid to its account's owner.
    /// Its commitment is `keccak256(abi.encode(h, withdrawals, rejected))`.
    function commitBatch(
        BatchHeader calldata h,
        Withdrawal[] calldata withdrawals,
        uint64[] calldata rejected,
        bytes calldata data
    ) external {
        _checkHeader(h);
        bytes32 got = keccak256(data);
        if (got != h.dataHash) revert WrongDataHash(h.dataHash, got);
        _commit(h, withdrawals, rejected, keccak256(abi.encode(h, withdrawals, rejected)));
    }

    /// Commits a batch whose data is posted as EIP-4844 blobs of this transaction
    /// (docs/SETTLEMENT.md, "Batch data in blobs"): as `commitBatch`, except that the data is
    /// not an argument. The contract cannot read the blobs, so it cannot check `h.dataHash`
    /// against them (a verifier does); it binds their versioned hashes, `blobhash(0)`,
    /// `blobhash(1)`, … up to the first zero, in the commitment
    /// `keccak256(abi.encode(h, withdrawals, rejected, versionedHashes))` and emits them
    /// (`BatchBlobs`). A transaction without blobs is refused (`NoBlobs`).
    function commitBatchBlobs(BatchHeader calldata h, Withdrawal[] calldata withdrawals, uint64[] calldata rejected)
        external
    {
        _checkHeader(h);
        uint256 n = 0;
        while (blobhash(n) != bytes32(0)) n++;
        if (n == 0) revert NoBlobs();
        bytes32[] memory hashes = new bytes32[](n);
        for (uint256 i = 0; i < n; i++) {
            hashes[i] = blobhash(i);
        }
        _commit(h, withdrawals, rejected, keccak256(abi.encode(h, withdrawals, rejected, hashes)));
        emit BatchBlobs(h.index, hashes);
    }

    /// The checks of a commit that read the header alone (docs/SETTLEMENT.md, "Committing a
    /// batch": the first four).
    function _checkHeader(BatchHeader calldata h) private view {
        if (msg.sender != submitter) revert NotSubmitter(msg.sender);
        if (frozen) revert IsFrozen();
        if (h.index != lastIndex + 1) revert WrongIndex(lastIndex + 1, h.index);
        if (h.prevRoot != lastRoot) revert WrongPreviousRoot(lastRoot, h.prevRoot);
    }

    /// The rest of a commit, whatever carries its data: the queue's checks, consuming it,
    /// paying the withdrawals, and recording the batch with `commitment`.
    function _commit(
        BatchHeader calldata h,
        Withdrawal[] calldata withdrawals,
        uint64[] calldata rejected,
        bytes32 commitment
    ) private {
        uint64 from = processed;
        if (h.queueCount < from || h.queueCount > queueLength) {
            revert QueueCountOutOfRange(from, queueLength, h.queueCount);
        }
        bytes32 expected = queueHashes[h.queueCount];
        if (expected != h.queueHash) revert WrongQueueHash(h.queueCount, expected, h.queueHash);

        _consume(from, h.queueCount, rejected);
        _payWithdrawals(withdrawals);

        processed = h.queueCount;
        lastIndex = h.index;
        lastRoot = h.newRoot;
        lastMarketHash = h.marketHash;
        roots[h.index] = h.newRoot;
        commitments[h.index] = commitment;
        emit BatchCommitted(h.index, h.newRoot, h.dataHash, h.firstSeq, h.lastSeq, h.epochTs, h.queueCount, commitment);
    }

    /// Consumes entries `from + 1 ..= to`; `rejected` must be exactly the refused ones among
    /// them, increasing.
    function _consume(uint64 from, uint64 to, uint64[] calldata rejected) private {
        uint256 r;
        uint256 backed = l2Total;
        for (uint64 i = from + 1; i <= to; i++) {
            Entry storage e = entries[i];
            bool refused = r < rejected.length && rejected[r] == i;
            if (refused) r++;
            uint64 amount = e.amount;
            if (e.kind == Kind.ForcedWithdrawal) {
                if (!refused) {
                    if (amount > backed) revert WithdrawalsExceedDeposits(backed, amount);
                    backed -= amount;
                    _credit(owners[e.account], amount);
                }
            } else {
                pendingDeposits -= amount;
                if (refused) _credit(e.from, amount);
                else backed += amount;
            }
        }
        if (r != rejected.length) revert BadRejected(r);
        l2Total = backed;
    }

    function _payWithdrawals(Withdrawal[] calldata withdrawals) private {
        uint256 backed = l2Total;
        for (uint256 i = 0; i < withdrawals.length; i++) {
            Withdrawal calldata w = withdrawals[i];
            if (w.amount == 0 || w.account == INSURANCE_ACCOUNT) revert BadWithdrawal(i);
            address to = w.account == FEE_ACCOUNT ? feeRecipient : owners[w.account];
            if (to == address(0)) revert NoOwner(w.account);
            if (w.amount > backed) revert WithdrawalsExceedDeposits(backed, w.amount);
            backed -= w.amount;
            _credit(to, w.amount);
        }
        l2Total = backed;
    }

    // ----- claims -----

    /// Adds `amount` to what `to` may claim; the whole balance becomes claimable
    /// `claimDelay` seconds from now.
    function _credit(address to, uint64 amount) private {
        Claim storage c = claims[to];
        uint64 availableAt = uint64(block.timestamp) + claimDelay;
        c.amount += amount;
        c.availableAt = availableAt;
        totalClaimable += amount;
        emit Credited(to, amount, availableAt);
    }

    /// Pays the sender everything it may claim.
    function claim() external {
        Claim memory c = claims[msg.sender];
        if (c.amount == 0) revert NothingToClaim();
        if (block.timestamp < c.availableAt) revert ClaimNotYet(c.availableAt);
        delete claims[msg.sender];
        totalClaimable -= c.amount;
        _call(abi.encodeCall(IERC20Vault.transfer, (msg.sender, c.amount)));
        emit Claimed(msg.sender, c.amount);
    }

    // ----- freeze -----

    /// Anyone may freeze the contract once the oldest unconsumed queue entry has waited more
    /// than `forcedDeadline` seconds: the operator stopped honouring the queue.
    function freeze() external {
        if (frozen) revert IsFrozen();
        uint64 oldest = processed + 1;
        uint64 dueAt = oldest <= queueLength ? entries[oldest].requestedAt + forcedDeadline : type(uint64).max;
        if (block.timestamp <= dueAt) revert NotOverdue(oldest, dueAt);
        frozen = true;
        frozenAt = uint64(block.timestamp);
        emit Frozen(oldest, entries[oldest].requestedAt);
    }

    /// Once frozen, refunds up to `count` of the deposits no batch consumed, oldest first,
    /// to their depositors' claims (forced withdrawals waiting are moot: nothing more is
    /// committed). Anyone may call it, as often as needed; `refunded()` is how far it got.
    function refundQueued(uint64 count) external {
        if (!frozen) revert NotFrozen();
        uint64 i = refunded > processed ? refunded : processed;
        uint64 last = queueLength - i < count ? queueLength : i + count;
        while (i < last) {
            i++;
            Entry storage e = entries[i];
            if (e.kind != Kind.ForcedWithdrawal) {
                pendingDeposits -= e.amount;
                _credit(e.from, e.amount);
            }
        }
        refunded = i;
    }

    // ----- escape -----

    /// Once frozen, an account leaves with its equity at the last committed root: the
    /// owner (the fee account's `feeRecipient` and the insurance fund's `insuranceRecipient`,
    /// both once `insuranceExitDelay` has passed since the freeze) proves its leaf against
    /// `lastRoot` and gives the market state committed with it; it is credited
    /// `min(max(equity, 0), l2Total)` as a claim, once. No division, no rounding: every term
    /// is an integer number of base units (docs/SETTLEMENT.md, "Escape").
    function escape(AccountLeaf calldata leaf, bytes32[] calldata siblings, Market[] calldata markets) external {
        if (!frozen) revert NotFrozen();
        if (lastIndex == 0 || !_proves(lastRoot, leaf, siblings)) revert BadProof(leaf.account);
        // Only a leaf with positions needs the market state: collateral alone leaves even if
        // the committed market hash matches nothing anyone can give.
        if (leaf.positions.length > 0) {
            bytes32 got = keccak256(abi.encode(markets));
            if (got != lastMarketHash) revert WrongMarketState(lastMarketHash, got);
        }
        if (escaped[leaf.account]) revert AlreadyEscaped(leaf.account);
        address payee;
        if (leaf.account >= FEE_ACCOUNT) {
            // The fee account and the fund leave last: the operator's own money must not go
            // ahead of the traders' when there is a shortfall.
            payee = leaf.account == FEE_ACCOUNT ? feeRecipient : insuranceRecipient;
            uint64 availableAt = frozenAt + insuranceExitDelay;
            if (block.timestamp < availableAt) revert InsuranceNotYet(availableAt);
        } else {
            payee = owners[leaf.account];
        }
        if (msg.sender != payee) revert NotOwner(leaf.account, payee, msg.sender);
        int256 equity = equityOf(leaf, markets);
        escaped[leaf.account] = true;
        uint256 paid = equity > 0 ? uint256(equity) : 0;
        if (paid > l2Total) paid = l2Total;
        l2Total -= paid;
        // paid ≤ l2Total ≤ 2^62: it fits a uint64.
        if (paid > 0) _credit(payee, uint64(paid));
        emit Escaped(leaf.account, payee, equity, paid);
    }

    /// A leaf's equity at `markets`: collateral + Σ (size × mark × tickValue − cost −
    /// size × (fundingIndex − the position's)), base units, exact (int256 cannot overflow
    /// for these widths). Reverts `Unlisted` or `NoMark` for a position it cannot value.
    function equityOf(AccountLeaf calldata leaf, Market[] calldata markets) public pure returns (int256 equity) {
        equity = leaf.collateral;
        for (uint256 i = 0; i < leaf.positions.length; i++) {
            Position calldata p = leaf.positions[i];
            if (p.instrument >= markets.length || markets[p.instrument].instrument != p.instrument) {
                revert Unlisted(leaf.account, p.instrument);
            }
            Market calldata m = markets[p.instrument];
            if (m.mark == 0) revert NoMark(leaf.account, p.instrument);
            int256 size = p.size;
            equity += size * m.mark * m.tickValue - p.cost - size * (int256(m.fundingIndex) - p.fundingIndex);
        }
    }

    /// Calls the token and requires success: no revert, and `true` or nothing returned (the
    /// tokens that return nothing), from an address that has code.
    function _call(bytes memory input) private {
        (bool ok, bytes memory ret) = token.call(input);
        if (!ok || (ret.length != 0 && !abi.decode(ret, (bool))) || token.code.length == 0) {
            revert TokenTransferFailed();
        }
    }

    // ----- the tree -----

    /// The tree's hash of a subtree holding one leaf.
    function leafNode(uint64 key, bytes32 value) public pure returns (bytes32) {
        return keccak256(abi.encodePacked(uint8(0), key, value));
    }

    /// The tree's hash of a subtree holding two or more leaves.
    function node(bytes32 left, bytes32 right) public pure returns (bytes32) {
        return keccak256(abi.encodePacked(uint8(1), left, right));
    }

    /// The value the tree stores for a leaf.
    function leafHash(AccountLeaf calldata leaf) public pure returns (bytes32) {
        return keccak256(abi.encode(leaf));
    }

    /// Whether `leaf` is in the tree of batch `index`'s root, by its proof (the siblings
    /// from the root's children down).
    function verifyLeaf(uint64 index, AccountLeaf calldata leaf, bytes32[] calldata siblings)
        external
        view
        returns (bool)
    {
        if (index == 0 || index > lastIndex) return false;
        return _proves(roots[index], leaf, siblings);
    }

    /// Whether `siblings` prove `leaf` in the tree of `root`.
    function _proves(bytes32 root, AccountLeaf calldata leaf, bytes32[] calldata siblings) private pure returns (bool) {
        if (siblings.length > 64) return false;
        bytes32 h = leafNode(leaf.account, leafHash(leaf));
        for (uint256 i = siblings.length; i > 0; i--) {
            uint256 depth = i - 1;
            bool right = (leaf.account >> (63 - depth)) & 1 == 1;
            h = right ? node(siblings[depth], h) : node(h, siblings[depth]);
        }
        return h == root;
    }
}

// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test} from "./Test.sol";
import {DeployMarketplace} from "../../script/DeployMarketplace.sol";

import {LumerinDiamond} from "../../src/diamond/LumerinDiamond.sol";
import {MorpheusToken} from "../../src/mock/MorpheusToken.sol";
import {DelegateRegistry} from "../../src/mock/DelegateRegistry.sol";
import {IProviderRegistry} from "../../src/interfaces/facets/IProviderRegistry.sol";
import {IModelRegistry} from "../../src/interfaces/facets/IModelRegistry.sol";
import {IMarketplace} from "../../src/interfaces/facets/IMarketplace.sol";
import {ISessionRouter} from "../../src/interfaces/facets/ISessionRouter.sol";
import {IDelegation} from "../../src/interfaces/facets/IDelegation.sol";
import {IBidStorage} from "../../src/interfaces/storage/IBidStorage.sol";
import {IStatsStorage} from "../../src/interfaces/storage/IStatsStorage.sol";
import {ISessionStorage} from "../../src/interfaces/storage/ISessionStorage.sol";

/// @notice Shared world for the marketplace tests: the real diamond wired by DeployMarketplace (the same code
///         the deploy script runs), funded accounts with known keys, and helpers that build and sign
///         approvals and receipts exactly as the routers do (abi.encode + EIP-191 over the keccak hash).
/// @dev The test contract is the diamond owner. Time starts at payoutStart + 10 days (as in the reference
///      tests), where the compute balance is 32 808.0014 MOR.
abstract contract MarketplaceTestBase is Test, DeployMarketplace {
    uint128 internal constant PAYOUT_START = 1707393600;
    uint256 internal constant START_TIME = PAYOUT_START + 10 days;

    uint256 internal constant PROVIDER_KEY = 0xA11CE;
    uint256 internal constant USER_KEY = 0xB0B;
    uint256 internal constant FUNDING_KEY = 0xF00D;
    uint256 internal constant DELEGATE_KEY = 0xDE1E;
    uint256 internal constant STRANGER_KEY = 0xBAD;
    uint256 internal constant PROVIDER2_KEY = 0xA11CE2;

    uint256 internal constant MIN_PRICE = 0.0001 ether;
    uint256 internal constant MAX_PRICE = 900 ether;
    uint256 internal constant PRICE = 0.0001 ether;
    uint256 internal constant PROVIDER_STAKE = 0.2 ether;
    uint256 internal constant MODEL_STAKE = 100 ether;
    uint256 internal constant SESSION_STAKE = 50 ether;
    uint128 internal constant MAX_SESSION_DURATION = 1 days;
    uint256 internal constant INITIAL_BALANCE = 1_000_000 ether;
    bytes32 internal constant BASE_MODEL_ID = keccak256("llama-3-8b");

    address internal owner;
    address internal provider;
    address internal user;
    address internal funding;
    address internal delegatee;
    address internal stranger;
    address internal provider2;

    Deployment internal d;
    MorpheusToken internal token;
    DelegateRegistry internal registry;
    LumerinDiamond internal diamond;
    IProviderRegistry internal providerRegistry;
    IModelRegistry internal modelRegistry;
    IMarketplace internal marketplace;
    IBidStorage internal bidStorage;
    ISessionRouter internal sessionRouter;
    IStatsStorage internal statsStorage;
    IDelegation internal delegation;

    /// @dev The delegation rule values, read from the diamond in setUp (so a delegation made under
    ///      `vm.prank` never spends the prank on a rule lookup).
    bytes32 internal RULES_PROVIDER;
    bytes32 internal RULES_MODEL;
    bytes32 internal RULES_MARKETPLACE;
    bytes32 internal RULES_SESSION;

    /// @dev MOR balances of the parties of a session, and of every account together (_totalHeld).
    struct Balances {
        uint256 provider;
        uint256 user;
        uint256 funding;
        uint256 diamond;
        uint256 delegatee;
        uint256 total;
    }

    function setUp() public virtual {
        vm.warp(START_TIME);

        owner = address(this);
        provider = vm.addr(PROVIDER_KEY);
        user = vm.addr(USER_KEY);
        funding = vm.addr(FUNDING_KEY);
        delegatee = vm.addr(DELEGATE_KEY);
        stranger = vm.addr(STRANGER_KEY);
        provider2 = vm.addr(PROVIDER2_KEY);

        d = _deployMarketplace(_testConfig());
        token = MorpheusToken(d.token);
        registry = DelegateRegistry(d.delegateRegistry);
        diamond = LumerinDiamond(payable(d.diamond));
        providerRegistry = IProviderRegistry(d.diamond);
        modelRegistry = IModelRegistry(d.diamond);
        marketplace = IMarketplace(d.diamond);
        bidStorage = IBidStorage(d.diamond);
        sessionRouter = ISessionRouter(d.diamond);
        statsStorage = IStatsStorage(d.diamond);
        delegation = IDelegation(d.diamond);
        RULES_PROVIDER = delegation.DELEGATION_RULES_PROVIDER();
        RULES_MODEL = delegation.DELEGATION_RULES_MODEL();
        RULES_MARKETPLACE = delegation.DELEGATION_RULES_MARKETPLACE();
        RULES_SESSION = delegation.DELEGATION_RULES_SESSION();

        address[6] memory accounts_ = [provider, user, funding, delegatee, stranger, provider2];
        for (uint256 i = 0; i < accounts_.length; i++) {
            token.mint(accounts_[i], INITIAL_BALANCE);
            vm.prank(accounts_[i]);
            token.approve(d.diamond, type(uint256).max);
        }
    }

    /// @dev The reference test parameters: min stakes 0, no bid fee, 0.0001..900 MOR/s, max session 1 day.
    function _testConfig() internal view virtual returns (MarketplaceConfig memory) {
        return
            MarketplaceConfig({
                token: address(0),
                delegateRegistry: address(0),
                fundingAccount: vm.addr(FUNDING_KEY),
                maxSessionDuration: MAX_SESSION_DURATION,
                bidMinPricePerSecond: MIN_PRICE,
                bidMaxPricePerSecond: MAX_PRICE,
                providerMinimumStake: 0,
                modelMinimumStake: 0,
                bidFee: 0,
                pools: _defaultPools()
            });
    }

    // ---------------------------------------------------------------------------------------------------
    // World building
    // ---------------------------------------------------------------------------------------------------

    function _registerProvider(address provider_, uint256 stake_) internal {
        vm.prank(provider_);
        providerRegistry.providerRegister(provider_, stake_, "127.0.0.1:3333");
    }

    function _registerModel(address owner_, bytes32 baseId_, uint256 stake_) internal returns (bytes32 modelId_) {
        string[] memory tags_ = new string[](2);
        tags_[0] = "llm";
        tags_[1] = "chat";
        vm.prank(owner_);
        modelRegistry.modelRegister(owner_, baseId_, keccak256("ipfs"), 0, stake_, "Llama 3 8B", tags_);
        return modelRegistry.getModelId(owner_, baseId_);
    }

    function _postBid(address provider_, bytes32 modelId_, uint256 price_) internal returns (bytes32 bidId_) {
        vm.prank(provider_);
        return marketplace.postModelBid(provider_, modelId_, price_);
    }

    /// @dev The reference world: provider with 0.2 MOR, a 100 MOR model owned by the provider, one bid.
    function _defaultBid() internal returns (bytes32 modelId_, bytes32 bidId_) {
        _registerProvider(provider, PROVIDER_STAKE);
        modelId_ = _registerModel(provider, BASE_MODEL_ID, MODEL_STAKE);
        bidId_ = _postBid(provider, modelId_, PRICE);
    }

    // ---------------------------------------------------------------------------------------------------
    // Signed artifacts (as the routers build them)
    // ---------------------------------------------------------------------------------------------------

    function _approval(bytes32 bidId_, address user_, uint256 chainId_, uint128 timestamp_) internal pure returns (bytes memory) {
        return abi.encode(bidId_, chainId_, user_, timestamp_);
    }

    /// @dev An approval for `user` on this chain stamped now, in MILLISECONDS like the routers.
    function _approvalNow(bytes32 bidId_) internal view returns (bytes memory) {
        return _approval(bidId_, user, block.chainid, uint128(block.timestamp * 1000));
    }

    /// @dev The 7-word receipt the current routers send (the contract reads the first five words).
    function _receipt(bytes32 sessionId_, uint256 chainId_, uint128 timestamp_, uint32 tps_, uint32 ttft_) internal pure returns (bytes memory) {
        return abi.encode(sessionId_, chainId_, timestamp_, tps_, ttft_, uint32(100), uint32(200));
    }

    function _receiptNow(bytes32 sessionId_, uint32 tps_, uint32 ttft_) internal view returns (bytes memory) {
        return _receipt(sessionId_, block.chainid, uint128(block.timestamp * 1000), tps_, ttft_);
    }

    /// @dev 65-byte (r, s, v) signature with v in {27, 28} over keccak256("\x19Ethereum Signed Message:\n32" ‖ keccak256(message)).
    function _sign(uint256 key_, bytes memory message_) internal pure returns (bytes memory) {
        bytes32 digest_ = keccak256(abi.encodePacked("\x19Ethereum Signed Message:\n32", keccak256(message_)));
        (uint8 v_, bytes32 r_, bytes32 s_) = vm.sign(key_, digest_);
        return abi.encodePacked(r_, s_, v_);
    }

    function _openSession(bytes32 bidId_, uint256 stake_, bool direct_) internal returns (bytes32 sessionId_) {
        bytes memory approval_ = _approvalNow(bidId_);
        bytes memory signature_ = _sign(PROVIDER_KEY, approval_);
        vm.prank(user);
        return sessionRouter.openSession(user, stake_, direct_, approval_, signature_);
    }

    /// @dev Closes as the user with a receipt signed by `signerKey_` (PROVIDER_KEY: no dispute; USER_KEY: dispute).
    function _closeSession(bytes32 sessionId_, uint256 signerKey_) internal {
        bytes memory receipt_ = _receiptNow(sessionId_, 10_000, 500);
        bytes memory signature_ = _sign(signerKey_, receipt_);
        vm.prank(user);
        sessionRouter.closeSession(receipt_, signature_);
    }

    /// @dev Revert data of InsufficientRightsForOperation(delegator, delegatee).
    function _insufficientRights(address delegator_, address delegatee_) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IDelegation.InsufficientRightsForOperation.selector, delegator_, delegatee_);
    }

    // ---------------------------------------------------------------------------------------------------
    // Time and balances
    // ---------------------------------------------------------------------------------------------------

    function _startOfDay(uint256 t_) internal pure returns (uint256) {
        return t_ - (t_ % 1 days);
    }

    /// @dev Moves to `secondsBefore_` seconds before the next UTC midnight.
    function _warpBeforeMidnight(uint256 secondsBefore_) internal {
        vm.warp(_startOfDay(block.timestamp) + 1 days - secondsBefore_);
    }

    function _balances() internal view returns (Balances memory b_) {
        b_.provider = token.balanceOf(provider);
        b_.user = token.balanceOf(user);
        b_.funding = token.balanceOf(funding);
        b_.diamond = token.balanceOf(d.diamond);
        b_.delegatee = token.balanceOf(delegatee);
        b_.total = _totalHeld();
    }

    /// @dev Sum of the balances of every account that can hold MOR in these tests, plus the diamond.
    function _totalHeld() internal view returns (uint256 sum_) {
        address[8] memory accounts_ = [provider, user, funding, delegatee, stranger, provider2, owner, d.diamond];
        for (uint256 i = 0; i < accounts_.length; i++) {
            sum_ += token.balanceOf(accounts_[i]);
        }
    }
}

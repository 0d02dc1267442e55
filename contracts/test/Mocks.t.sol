// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MarketplaceTestBase} from "./utils/MarketplaceTestBase.sol";
import {Vm} from "./utils/Vm.sol";

import {MorpheusToken} from "../src/mock/MorpheusToken.sol";
import {Multicall3} from "../src/mock/Multicall3.sol";
import {DelegateRegistry} from "../src/mock/DelegateRegistry.sol";
import {IBidStorage} from "../src/interfaces/storage/IBidStorage.sol";
import {IProviderStorage} from "../src/interfaces/storage/IProviderStorage.sol";
import {IModelStorage} from "../src/interfaces/storage/IModelStorage.sol";
import {ISessionStorage} from "../src/interfaces/storage/ISessionStorage.sol";

/// @notice The dev-chain mocks the routers rely on (contracts.md §6, §7 "Infrastructure"): the MOR token
///         (OZ 4.9 ERC-20 with increaseAllowance), Multicall3 batching the diamond getters, and the
///         delegate.xyz v2-compatible DelegateRegistry (§2.4 semantics).
contract MocksTest is MarketplaceTestBase {
    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);
    event DelegateAll(address indexed from, address indexed to, bytes32 rights, bool enable);
    event DelegateContract(address indexed from, address indexed to, address indexed contract_, bytes32 rights, bool enable);

    Multicall3 internal multicall;

    function setUp() public override {
        super.setUp();
        multicall = Multicall3(d.multicall3);
    }

    // ===================================================================================================
    // MorpheusToken
    // ===================================================================================================

    function test_token_metadataAndInitialSupply() public {
        vm.prank(stranger);
        MorpheusToken t_ = new MorpheusToken();
        assertEq(uint256(t_.decimals()), 18, "decimals");
        assertEq(t_.name(), "Morpheus dev", "name");
        assertEq(t_.symbol(), "MOR", "symbol");
        assertEq(t_.INITIAL_SUPPLUY(), 42_000_000 ether, "INITIAL_SUPPLUY (sic)");
        assertEq(t_.totalSupply(), 42_000_000 ether, "totalSupply");
        assertEq(t_.balanceOf(stranger), 42_000_000 ether, "minted to the deployer");
        assertEq(t_.balanceOf(address(this)), 0, "nobody else holds any");
    }

    function test_token_constructorEmitsMintTransfer() public {
        vm.recordLogs();
        MorpheusToken t_ = new MorpheusToken();
        Vm.Log[] memory logs_ = vm.getRecordedLogs();
        assertEq(logs_.length, 1, "one log");
        assertEq(logs_[0].emitter, address(t_), "from the token");
        assertEq(logs_[0].topics[0], keccak256("Transfer(address,address,uint256)"), "Transfer");
        assertEq(logs_[0].topics[1], bytes32(0), "from zero");
        assertEq(logs_[0].topics[2], bytes32(uint256(uint160(address(this)))), "to deployer");
        assertEq(logs_[0].data, abi.encode(uint256(42_000_000 ether)), "amount");
    }

    function test_token_sharedWorldIsFunded() public view {
        assertEq(token.balanceOf(provider), INITIAL_BALANCE, "provider funded by mint");
        assertEq(token.totalSupply(), token.INITIAL_SUPPLUY() + 6 * INITIAL_BALANCE, "supply = initial + mints");
        assertEq(token.allowance(user, address(diamond)), type(uint256).max, "infinite approval");
    }

    function test_token_mintByAnyone() public {
        uint256 supplyBefore_ = token.totalSupply();
        uint256 balanceBefore_ = token.balanceOf(user);
        vm.expectEmit(true, true, false, true, address(token));
        emit Transfer(address(0), user, 5 ether);
        vm.prank(stranger);
        token.mint(user, 5 ether);
        assertEq(token.totalSupply(), supplyBefore_ + 5 ether, "supply grows");
        assertEq(token.balanceOf(user), balanceBefore_ + 5 ether, "recipient credited");
        assertEq(token.balanceOf(stranger), INITIAL_BALANCE, "minter unchanged");

        vm.expectRevert(bytes("ERC20: mint to the zero address"));
        token.mint(address(0), 1);
    }

    function test_token_increaseAndDecreaseAllowance() public {
        address spender_ = address(0x5BE);
        assertEq(token.allowance(user, spender_), 0, "starts at 0");

        vm.expectEmit(true, true, false, true, address(token));
        emit Approval(user, spender_, 10 ether);
        vm.prank(user);
        assertTrue(token.increaseAllowance(spender_, 10 ether), "increaseAllowance returns true");
        assertEq(token.allowance(user, spender_), 10 ether, "increased");

        vm.prank(user);
        token.increaseAllowance(spender_, 5 ether);
        assertEq(token.allowance(user, spender_), 15 ether, "accumulates");

        vm.expectEmit(true, true, false, true, address(token));
        emit Approval(user, spender_, 12 ether);
        vm.prank(user);
        assertTrue(token.decreaseAllowance(spender_, 3 ether), "decreaseAllowance returns true");
        assertEq(token.allowance(user, spender_), 12 ether, "decreased");

        vm.prank(user);
        vm.expectRevert(bytes("ERC20: decreased allowance below zero"));
        token.decreaseAllowance(spender_, 12 ether + 1);
        assertEq(token.allowance(user, spender_), 12 ether, "unchanged after failed decrease");

        vm.prank(user);
        token.decreaseAllowance(spender_, 12 ether);
        assertEq(token.allowance(user, spender_), 0, "down to 0");
    }

    function test_token_increaseAllowanceThenTransferFrom() public {
        // The router's flow: increaseAllowance(diamond-like spender, stake), then the spender pulls.
        address spender_ = address(0x5BE);
        vm.prank(user);
        token.increaseAllowance(spender_, 50 ether);

        uint256 userBefore_ = token.balanceOf(user);
        uint256 strangerBefore_ = token.balanceOf(stranger);
        vm.expectEmit(true, true, false, true, address(token));
        emit Transfer(user, stranger, 30 ether);
        vm.prank(spender_);
        assertTrue(token.transferFrom(user, stranger, 30 ether), "transferFrom returns true");
        assertEq(token.balanceOf(user), userBefore_ - 30 ether, "payer debited");
        assertEq(token.balanceOf(stranger), strangerBefore_ + 30 ether, "payee credited");
        assertEq(token.allowance(user, spender_), 20 ether, "allowance spent");

        vm.prank(spender_);
        vm.expectRevert(bytes("ERC20: insufficient allowance"));
        token.transferFrom(user, stranger, 20 ether + 1);
    }

    function test_token_infiniteAllowanceNotSpent() public {
        vm.prank(address(diamond));
        token.transferFrom(user, stranger, 1 ether);
        assertEq(token.allowance(user, address(diamond)), type(uint256).max, "max allowance is not decreased");
    }

    function test_token_insufficientAllowanceString() public {
        vm.prank(stranger);
        vm.expectRevert(bytes("ERC20: insufficient allowance"));
        token.transferFrom(user, stranger, 1);
        assertEq(token.balanceOf(user), INITIAL_BALANCE, "nothing moved");
    }

    function test_token_transferExceedsBalanceString() public {
        vm.prank(user);
        vm.expectRevert(bytes("ERC20: transfer amount exceeds balance"));
        token.transfer(stranger, INITIAL_BALANCE + 1);

        // transferFrom with enough allowance but not enough balance hits the balance string.
        vm.prank(address(diamond));
        vm.expectRevert(bytes("ERC20: transfer amount exceeds balance"));
        token.transferFrom(user, stranger, INITIAL_BALANCE + 1);

        // Exactly the balance works.
        uint256 strangerBefore_ = token.balanceOf(stranger);
        vm.prank(user);
        token.transfer(stranger, INITIAL_BALANCE);
        assertEq(token.balanceOf(user), 0, "emptied");
        assertEq(token.balanceOf(stranger), strangerBefore_ + INITIAL_BALANCE, "credited");
    }

    function test_token_abiSelectors() public view {
        // increaseAllowance(address,uint256) is what the routers call (OZ v5 dropped it).
        assertEq(bytes32(token.increaseAllowance.selector), bytes32(bytes4(0x39509351)), "increaseAllowance");
        assertEq(bytes32(token.decreaseAllowance.selector), bytes32(bytes4(0xa457c2d7)), "decreaseAllowance");
        assertEq(bytes32(token.approve.selector), bytes32(bytes4(0x095ea7b3)), "approve");
        assertEq(bytes32(token.transferFrom.selector), bytes32(bytes4(0x23b872dd)), "transferFrom");
    }

    // ===================================================================================================
    // Multicall3
    // ===================================================================================================

    /// @dev The four getters the router batches, for the given ids.
    function _getterCalls(
        bytes32 bidId_,
        address provider_,
        bytes32 modelId_,
        bytes32 sessionId_
    ) internal view returns (Multicall3.Call[] memory calls_) {
        calls_ = new Multicall3.Call[](4);
        calls_[0] = Multicall3.Call(address(diamond), abi.encodeCall(IBidStorage.getBid, (bidId_)));
        calls_[1] = Multicall3.Call(address(diamond), abi.encodeCall(IProviderStorage.getProvider, (provider_)));
        calls_[2] = Multicall3.Call(address(diamond), abi.encodeCall(IModelStorage.getModel, (modelId_)));
        calls_[3] = Multicall3.Call(address(diamond), abi.encodeCall(ISessionStorage.getSession, (sessionId_)));
    }

    function _assertZeroResults(bytes[] memory ret_) internal pure {
        IBidStorage.Bid memory b_ = abi.decode(ret_[0], (IBidStorage.Bid));
        assertEq(b_.provider, address(0), "bid.provider zero");
        assertEq(b_.modelId, bytes32(0), "bid.modelId zero");
        assertEq(b_.pricePerSecond, 0, "bid.price zero");
        assertEq(uint256(b_.createdAt), 0, "bid.createdAt zero");

        IProviderStorage.Provider memory p_ = abi.decode(ret_[1], (IProviderStorage.Provider));
        assertEq(bytes(p_.endpoint).length, 0, "provider.endpoint empty");
        assertEq(p_.stake, 0, "provider.stake zero");
        assertEq(uint256(p_.createdAt), 0, "provider.createdAt zero");
        assertFalse(p_.isDeleted, "provider.isDeleted false");

        IModelStorage.Model memory m_ = abi.decode(ret_[2], (IModelStorage.Model));
        assertEq(m_.owner, address(0), "model.owner zero");
        assertEq(m_.stake, 0, "model.stake zero");
        assertEq(m_.tags.length, 0, "model.tags empty");
        assertEq(uint256(m_.createdAt), 0, "model.createdAt zero");

        ISessionStorage.Session memory s_ = abi.decode(ret_[3], (ISessionStorage.Session));
        // The router's "session not found" test.
        assertTrue(s_.user == address(0) && s_.openedAt == 0 && s_.endsAt == 0, "session not found shape");
        assertEq(s_.stake, 0, "session.stake zero");
        assertEq(s_.closeoutReceipt.length, 0, "session.receipt empty");
    }

    function test_multicall_aggregateKnownIds() public {
        (bytes32 modelId_, bytes32 bidId_) = _defaultBid();
        bytes32 sessionId_ = _openSession(bidId_, SESSION_STAKE, false);
        vm.roll(4242);

        (uint256 blockNumber_, bytes[] memory ret_) = multicall.aggregate(_getterCalls(bidId_, provider, modelId_, sessionId_));
        assertEq(blockNumber_, 4242, "block number");
        assertEq(ret_.length, 4, "four results");

        IBidStorage.Bid memory b_ = abi.decode(ret_[0], (IBidStorage.Bid));
        assertEq(b_.provider, provider, "bid.provider");
        assertEq(b_.modelId, modelId_, "bid.modelId");
        assertEq(b_.pricePerSecond, PRICE, "bid.price");
        assertEq(uint256(b_.createdAt), START_TIME, "bid.createdAt");

        IProviderStorage.Provider memory p_ = abi.decode(ret_[1], (IProviderStorage.Provider));
        assertEq(p_.endpoint, "127.0.0.1:3333", "provider.endpoint");
        assertEq(p_.stake, PROVIDER_STAKE, "provider.stake");
        assertEq(uint256(p_.createdAt), START_TIME, "provider.createdAt");

        IModelStorage.Model memory m_ = abi.decode(ret_[2], (IModelStorage.Model));
        assertEq(m_.owner, provider, "model.owner");
        assertEq(m_.stake, MODEL_STAKE, "model.stake");
        assertEq(m_.name, "Llama 3 8B", "model.name");
        assertEq(m_.tags.length, 2, "model.tags");
        assertEq(m_.tags[1], "chat", "model.tags[1]");

        ISessionStorage.Session memory s_ = abi.decode(ret_[3], (ISessionStorage.Session));
        assertEq(s_.user, user, "session.user");
        assertEq(s_.bidId, bidId_, "session.bidId");
        assertEq(s_.stake, SESSION_STAKE, "session.stake");
        assertEq(uint256(s_.openedAt), START_TIME, "session.openedAt");
        assertTrue(s_.isActive, "session active");

        // The results are exactly what the direct calls return.
        assertEq(ret_[0], abi.encode(bidStorage.getBid(bidId_)), "getBid bytes identical");
        assertEq(ret_[3], abi.encode(sessionRouter.getSession(sessionId_)), "getSession bytes identical");
    }

    /// @dev §7: the getters never revert for an unknown id, so one batch with known AND unknown ids succeeds.
    function test_multicall_aggregateMixedKnownAndUnknownIds() public {
        (bytes32 modelId_, bytes32 bidId_) = _defaultBid();
        bytes32 sessionId_ = _openSession(bidId_, SESSION_STAKE, false);

        Multicall3.Call[] memory known_ = _getterCalls(bidId_, provider, modelId_, sessionId_);
        Multicall3.Call[] memory unknown_ = _getterCalls(keccak256("no bid"), stranger, keccak256("no model"), keccak256("no session"));
        Multicall3.Call[] memory calls_ = new Multicall3.Call[](8);
        for (uint256 i = 0; i < 4; i++) {
            calls_[2 * i] = known_[i];
            calls_[2 * i + 1] = unknown_[i];
        }

        (, bytes[] memory ret_) = multicall.aggregate(calls_);
        assertEq(ret_.length, 8, "eight results");
        assertEq(abi.decode(ret_[0], (IBidStorage.Bid)).provider, provider, "known bid");
        assertEq(abi.decode(ret_[2], (IProviderStorage.Provider)).stake, PROVIDER_STAKE, "known provider");
        assertEq(abi.decode(ret_[4], (IModelStorage.Model)).owner, provider, "known model");
        assertEq(abi.decode(ret_[6], (ISessionStorage.Session)).user, user, "known session");

        bytes[] memory zero_ = new bytes[](4);
        zero_[0] = ret_[1];
        zero_[1] = ret_[3];
        zero_[2] = ret_[5];
        zero_[3] = ret_[7];
        _assertZeroResults(zero_);
    }

    function test_multicall_aggregateZeroIdsOnEmptyDiamond() public {
        (, bytes[] memory ret_) = multicall.aggregate(_getterCalls(bytes32(0), address(0), bytes32(0), bytes32(0)));
        _assertZeroResults(ret_);
    }

    function testFuzz_multicall_gettersNeverRevert(bytes32 bidId_, address provider_, bytes32 modelId_, bytes32 sessionId_) public {
        vm.assume(provider_ != provider);
        _defaultBid();
        (, bytes[] memory ret_) = multicall.aggregate(_getterCalls(bidId_, provider_, modelId_, sessionId_));
        assertEq(ret_.length, 4, "all four answered");
        // Unknown ids decode to zero structs (a random id hits a real one with negligible probability).
        _assertZeroResults(ret_);
    }

    function test_multicall_aggregateRevertsWhenOneCallFails() public {
        (bytes32 modelId_, bytes32 bidId_) = _defaultBid();
        Multicall3.Call[] memory good_ = _getterCalls(bidId_, provider, modelId_, bytes32(0));
        Multicall3.Call[] memory calls_ = new Multicall3.Call[](5);
        for (uint256 i = 0; i < 4; i++) calls_[i] = good_[i];

        // A selector the diamond does not route (MIN_SESSION_DURATION is not cut in, §1).
        calls_[4] = Multicall3.Call(address(diamond), abi.encodeWithSignature("MIN_SESSION_DURATION()"));
        vm.expectRevert(bytes("Multicall3: call failed"));
        multicall.aggregate(calls_);

        // A getter that does revert: getPool out of bounds (panic 0x32).
        calls_[4] = Multicall3.Call(address(diamond), abi.encodeCall(ISessionStorage.getPool, (99)));
        vm.expectRevert(bytes("Multicall3: call failed"));
        multicall.aggregate(calls_);

        // A failing call first also aborts the batch.
        calls_[0] = Multicall3.Call(address(diamond), abi.encodeCall(ISessionStorage.getPool, (5)));
        calls_[4] = good_[0];
        vm.expectRevert(bytes("Multicall3: call failed"));
        multicall.aggregate(calls_);
    }

    function _mixedCalls() internal returns (Multicall3.Call[] memory calls_, bytes32 bidId_) {
        (, bidId_) = _defaultBid();
        calls_ = new Multicall3.Call[](3);
        calls_[0] = Multicall3.Call(address(diamond), abi.encodeCall(IBidStorage.getBid, (bidId_)));
        calls_[1] = Multicall3.Call(address(diamond), abi.encodeWithSignature("MIN_SESSION_DURATION()"));
        calls_[2] = Multicall3.Call(address(diamond), abi.encodeCall(ISessionStorage.getPool, (99)));
    }

    function test_multicall_tryAggregate() public {
        (Multicall3.Call[] memory calls_, bytes32 bidId_) = _mixedCalls();

        Multicall3.Result[] memory res_ = multicall.tryAggregate(false, calls_);
        assertEq(res_.length, 3, "three results");
        assertTrue(res_[0].success, "getBid succeeded");
        assertEq(abi.decode(res_[0].returnData, (IBidStorage.Bid)).provider, provider, "decoded bid");
        assertFalse(res_[1].success, "unrouted selector failed");
        assertEq(
            res_[1].returnData,
            abi.encodeWithSignature("Error(string)", "Diamond: selector is not registered"),
            "diamond revert string passed through"
        );
        assertFalse(res_[2].success, "out-of-bounds pool failed");
        assertEq(res_[2].returnData, abi.encodeWithSignature("Panic(uint256)", uint256(0x32)), "panic 0x32 passed through");
        assertEq(bidStorage.getBid(bidId_).provider, provider, "state intact");

        vm.expectRevert(bytes("Multicall3: call failed"));
        multicall.tryAggregate(true, calls_);

        // requireSuccess with only good calls succeeds.
        Multicall3.Call[] memory one_ = new Multicall3.Call[](1);
        one_[0] = calls_[0];
        res_ = multicall.tryAggregate(true, one_);
        assertTrue(res_[0].success, "good call with requireSuccess");
    }

    function test_multicall_aggregate3AllowFailure() public {
        (Multicall3.Call[] memory plain_, ) = _mixedCalls();
        Multicall3.Call3[] memory calls_ = new Multicall3.Call3[](3);
        for (uint256 i = 0; i < 3; i++) {
            calls_[i] = Multicall3.Call3(plain_[i].target, true, plain_[i].callData);
        }

        Multicall3.Result[] memory res_ = multicall.aggregate3(calls_);
        assertTrue(res_[0].success, "getBid ok");
        assertEq(abi.decode(res_[0].returnData, (IBidStorage.Bid)).pricePerSecond, PRICE, "decoded price");
        assertFalse(res_[1].success, "unrouted selector allowed to fail");
        assertFalse(res_[2].success, "panic allowed to fail");

        // One failing call that is not allowed to fail reverts the batch.
        calls_[2].allowFailure = false;
        vm.expectRevert(bytes("Multicall3: call failed"));
        multicall.aggregate3(calls_);

        // A successful call with allowFailure = false is fine.
        calls_[1] = calls_[0];
        calls_[1].allowFailure = false;
        calls_[2].allowFailure = true;
        res_ = multicall.aggregate3(calls_);
        assertTrue(res_[1].success, "strict good call");
        assertEq(res_[1].returnData, res_[0].returnData, "same answer");
    }

    function test_multicall_blockAndAggregate() public {
        vm.roll(100);
        Multicall3.Call[] memory calls_ = new Multicall3.Call[](1);
        calls_[0] = Multicall3.Call(address(diamond), abi.encodeCall(IBidStorage.getToken, ()));
        (uint256 blockNumber_, , Multicall3.Result[] memory res_) = multicall.blockAndAggregate(calls_);
        assertEq(blockNumber_, 100, "block number");
        assertTrue(res_[0].success, "success");
        assertEq(abi.decode(res_[0].returnData, (address)), address(token), "getToken through multicall");
    }

    function test_multicall_chainIdBlockNumberTimestamp() public {
        assertEq(multicall.getChainId(), block.chainid, "chain id");
        vm.chainId(8453);
        assertEq(multicall.getChainId(), 8453, "chain id follows the chain");

        vm.roll(123_456);
        assertEq(multicall.getBlockNumber(), 123_456, "block number");
        vm.roll(123_457);
        assertEq(multicall.getBlockNumber(), 123_457, "block number follows");

        assertEq(multicall.getCurrentBlockTimestamp(), START_TIME, "timestamp");
        vm.warp(START_TIME + 99);
        assertEq(multicall.getCurrentBlockTimestamp(), START_TIME + 99, "timestamp follows");

        // Through aggregate too (the multicall calling itself).
        Multicall3.Call[] memory calls_ = new Multicall3.Call[](2);
        calls_[0] = Multicall3.Call(address(multicall), abi.encodeCall(Multicall3.getChainId, ()));
        calls_[1] = Multicall3.Call(address(multicall), abi.encodeCall(Multicall3.getBlockNumber, ()));
        (, bytes[] memory ret_) = multicall.aggregate(calls_);
        assertEq(abi.decode(ret_[0], (uint256)), 8453, "chain id via aggregate");
        assertEq(abi.decode(ret_[1], (uint256)), 123_457, "block number via aggregate");
    }

    function test_multicall_abiSelectors() public pure {
        // Canonical Multicall3 selectors (the router's binding).
        assertEq(bytes32(Multicall3.aggregate.selector), bytes32(bytes4(0x252dba42)), "aggregate((address,bytes)[])");
        assertEq(bytes32(Multicall3.tryAggregate.selector), bytes32(bytes4(0xbce38bd7)), "tryAggregate");
        assertEq(bytes32(Multicall3.aggregate3.selector), bytes32(bytes4(0x82ad56cb)), "aggregate3");
        assertEq(bytes32(Multicall3.getChainId.selector), bytes32(bytes4(0x3408e470)), "getChainId");
        assertEq(bytes32(Multicall3.getBlockNumber.selector), bytes32(bytes4(0x42cbb15c)), "getBlockNumber");
    }

    // ===================================================================================================
    // DelegateRegistry (delegate.xyz v2 semantics, §2.4)
    // ===================================================================================================

    function test_registry_noDelegationByDefault() public view {
        assertFalse(registry.checkDelegateForAll(delegatee, provider, bytes32(0)), "all, empty rights");
        assertFalse(registry.checkDelegateForAll(delegatee, provider, RULES_MARKETPLACE), "all, rule");
        assertFalse(registry.checkDelegateForContract(delegatee, provider, address(diamond), bytes32(0)), "contract, empty");
        assertFalse(registry.checkDelegateForContract(delegatee, provider, address(diamond), RULES_SESSION), "contract, rule");
        assertFalse(delegation.isRightsDelegated(delegatee, provider, RULES_SESSION), "diamond view");
    }

    function test_registry_delegateAllEmptyRightsGivesEverything() public {
        vm.expectEmit(true, true, false, true, address(registry));
        emit DelegateAll(provider, delegatee, bytes32(0), true);
        vm.prank(provider);
        registry.delegateAll(delegatee, bytes32(0), true);

        assertTrue(registry.checkDelegateForAll(delegatee, provider, bytes32(0)), "all, empty");
        assertTrue(registry.checkDelegateForAll(delegatee, provider, RULES_PROVIDER), "all, any rule");
        assertTrue(registry.checkDelegateForContract(delegatee, provider, address(diamond), bytes32(0)), "any contract, empty");
        assertTrue(registry.checkDelegateForContract(delegatee, provider, address(token), RULES_MODEL), "any contract, rule");
        assertTrue(registry.checkDelegateForContract(delegatee, provider, address(diamond), keccak256("whatever")), "any rights");
        assertTrue(delegation.isRightsDelegated(delegatee, provider, RULES_MARKETPLACE), "diamond: marketplace");
        assertTrue(delegation.isRightsDelegated(delegatee, provider, RULES_SESSION), "diamond: session");

        // Directional: from -> to only, and only for that pair.
        assertFalse(registry.checkDelegateForAll(provider, delegatee, bytes32(0)), "not reversed");
        assertFalse(registry.checkDelegateForContract(stranger, provider, address(diamond), bytes32(0)), "other delegatee");
        assertFalse(registry.checkDelegateForContract(delegatee, user, address(diamond), bytes32(0)), "other delegator");
    }

    function test_registry_delegateAllSpecificRights() public {
        vm.expectEmit(true, true, false, true, address(registry));
        emit DelegateAll(provider, delegatee, RULES_SESSION, true);
        vm.prank(provider);
        registry.delegateAll(delegatee, RULES_SESSION, true);

        assertTrue(registry.checkDelegateForAll(delegatee, provider, RULES_SESSION), "exact rule");
        assertFalse(registry.checkDelegateForAll(delegatee, provider, RULES_MODEL), "other rule");
        assertFalse(registry.checkDelegateForAll(delegatee, provider, bytes32(0)), "specific rights are not full rights");
        assertTrue(registry.checkDelegateForContract(delegatee, provider, address(diamond), RULES_SESSION), "contract via all");
        assertTrue(registry.checkDelegateForContract(delegatee, provider, address(token), RULES_SESSION), "any contract via all");
        assertFalse(registry.checkDelegateForContract(delegatee, provider, address(diamond), RULES_MARKETPLACE), "other rule");
        assertFalse(registry.checkDelegateForContract(delegatee, provider, address(diamond), bytes32(0)), "not full");
        assertTrue(delegation.isRightsDelegated(delegatee, provider, RULES_SESSION), "diamond: session");
        assertFalse(delegation.isRightsDelegated(delegatee, provider, RULES_PROVIDER), "diamond: provider");
    }

    function test_registry_delegateContractEmptyRights() public {
        vm.expectEmit(true, true, true, true, address(registry));
        emit DelegateContract(provider, delegatee, address(diamond), bytes32(0), true);
        vm.prank(provider);
        registry.delegateContract(delegatee, address(diamond), bytes32(0), true);

        assertTrue(registry.checkDelegateForContract(delegatee, provider, address(diamond), bytes32(0)), "empty");
        assertTrue(registry.checkDelegateForContract(delegatee, provider, address(diamond), RULES_MODEL), "any rule");
        assertFalse(registry.checkDelegateForContract(delegatee, provider, address(token), bytes32(0)), "other contract");
        assertFalse(registry.checkDelegateForContract(delegatee, provider, address(token), RULES_MODEL), "other contract, rule");
        assertFalse(registry.checkDelegateForAll(delegatee, provider, bytes32(0)), "not an ALL delegation");
        assertFalse(registry.checkDelegateForAll(delegatee, provider, RULES_MODEL), "not an ALL delegation, rule");
        assertTrue(delegation.isRightsDelegated(delegatee, provider, RULES_PROVIDER), "diamond: any rule");
    }

    function test_registry_delegateContractSpecificRights() public {
        vm.expectEmit(true, true, true, true, address(registry));
        emit DelegateContract(provider, delegatee, address(diamond), RULES_MARKETPLACE, true);
        vm.prank(provider);
        registry.delegateContract(delegatee, address(diamond), RULES_MARKETPLACE, true);

        assertTrue(registry.checkDelegateForContract(delegatee, provider, address(diamond), RULES_MARKETPLACE), "exact");
        assertFalse(registry.checkDelegateForContract(delegatee, provider, address(diamond), RULES_SESSION), "other rule");
        assertFalse(registry.checkDelegateForContract(delegatee, provider, address(diamond), bytes32(0)), "not full rights");
        assertFalse(registry.checkDelegateForContract(delegatee, provider, address(token), RULES_MARKETPLACE), "other contract");
        assertFalse(registry.checkDelegateForAll(delegatee, provider, RULES_MARKETPLACE), "not ALL");
        assertTrue(delegation.isRightsDelegated(delegatee, provider, RULES_MARKETPLACE), "diamond: marketplace");
        assertFalse(delegation.isRightsDelegated(delegatee, provider, RULES_SESSION), "diamond: session");
        assertFalse(delegation.isRightsDelegated(provider, delegatee, RULES_MARKETPLACE), "diamond: reversed");
    }

    function test_registry_revocation() public {
        vm.startPrank(provider);
        bytes32 hashOn_ = registry.delegateContract(delegatee, address(diamond), RULES_MARKETPLACE, true);
        registry.delegateContract(delegatee, address(diamond), RULES_SESSION, true);
        registry.delegateAll(delegatee, bytes32(0), true);
        vm.stopPrank();
        assertTrue(registry.checkDelegateForContract(delegatee, provider, address(diamond), RULES_MODEL), "all gives model");

        // Revoke ALL: only the two specific contract rules remain.
        vm.expectEmit(true, true, false, true, address(registry));
        emit DelegateAll(provider, delegatee, bytes32(0), false);
        vm.prank(provider);
        registry.delegateAll(delegatee, bytes32(0), false);
        assertFalse(registry.checkDelegateForAll(delegatee, provider, bytes32(0)), "all revoked");
        assertFalse(registry.checkDelegateForContract(delegatee, provider, address(diamond), RULES_MODEL), "model gone");
        assertTrue(registry.checkDelegateForContract(delegatee, provider, address(diamond), RULES_MARKETPLACE), "marketplace kept");
        assertTrue(registry.checkDelegateForContract(delegatee, provider, address(diamond), RULES_SESSION), "session kept");

        // Revoke one specific rule: the other stays.
        vm.expectEmit(true, true, true, true, address(registry));
        emit DelegateContract(provider, delegatee, address(diamond), RULES_MARKETPLACE, false);
        vm.prank(provider);
        bytes32 hashOff_ = registry.delegateContract(delegatee, address(diamond), RULES_MARKETPLACE, false);
        assertEq(hashOff_, hashOn_, "same delegation hash for enable and disable");
        assertFalse(registry.checkDelegateForContract(delegatee, provider, address(diamond), RULES_MARKETPLACE), "revoked");
        assertTrue(registry.checkDelegateForContract(delegatee, provider, address(diamond), RULES_SESSION), "session kept");
        assertFalse(delegation.isRightsDelegated(delegatee, provider, RULES_MARKETPLACE), "diamond sees revocation");

        // A stranger cannot revoke someone else's delegation (it writes its own key).
        vm.prank(stranger);
        registry.delegateContract(delegatee, address(diamond), RULES_SESSION, false);
        assertTrue(registry.checkDelegateForContract(delegatee, provider, address(diamond), RULES_SESSION), "still there");

        // Re-enabling works.
        vm.prank(provider);
        registry.delegateContract(delegatee, address(diamond), RULES_MARKETPLACE, true);
        assertTrue(registry.checkDelegateForContract(delegatee, provider, address(diamond), RULES_MARKETPLACE), "re-enabled");
    }

    function test_registry_revokingEmptyRightsKeepsSpecificOnes() public {
        vm.startPrank(provider);
        registry.delegateContract(delegatee, address(diamond), bytes32(0), true);
        registry.delegateContract(delegatee, address(diamond), RULES_SESSION, true);
        registry.delegateContract(delegatee, address(diamond), bytes32(0), false);
        vm.stopPrank();
        assertFalse(registry.checkDelegateForContract(delegatee, provider, address(diamond), RULES_MODEL), "full rights gone");
        assertTrue(registry.checkDelegateForContract(delegatee, provider, address(diamond), RULES_SESSION), "specific kept");
    }

    function test_registry_distinctHashes() public {
        vm.startPrank(provider);
        bytes32 all_ = registry.delegateAll(delegatee, bytes32(0), true);
        bytes32 allRule_ = registry.delegateAll(delegatee, RULES_SESSION, true);
        bytes32 contract_ = registry.delegateContract(delegatee, address(diamond), bytes32(0), true);
        bytes32 contractRule_ = registry.delegateContract(delegatee, address(diamond), RULES_SESSION, true);
        vm.stopPrank();
        assertTrue(all_ != allRule_, "all vs all+rule");
        assertTrue(all_ != contract_, "all vs contract");
        assertTrue(contract_ != contractRule_, "contract vs contract+rule");
        assertTrue(allRule_ != contractRule_, "all+rule vs contract+rule");
    }

    function test_registry_abiSelectors() public pure {
        // delegate.xyz v2 selectors.
        assertEq(bytes32(DelegateRegistry.delegateAll.selector), bytes32(bytes4(keccak256("delegateAll(address,bytes32,bool)"))), "delegateAll");
        assertEq(
            bytes32(DelegateRegistry.delegateContract.selector),
            bytes32(bytes4(keccak256("delegateContract(address,address,bytes32,bool)"))),
            "delegateContract"
        );
        assertEq(
            bytes32(DelegateRegistry.checkDelegateForContract.selector),
            bytes32(bytes4(keccak256("checkDelegateForContract(address,address,address,bytes32)"))),
            "checkDelegateForContract"
        );
        assertEq(
            bytes32(DelegateRegistry.checkDelegateForAll.selector),
            bytes32(bytes4(keccak256("checkDelegateForAll(address,address,bytes32)"))),
            "checkDelegateForAll"
        );
    }
}

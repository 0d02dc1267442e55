// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MarketplaceTestBase} from "./utils/MarketplaceTestBase.sol";
import {ISessionRouter} from "../src/interfaces/facets/ISessionRouter.sol";
import {ISessionStorage} from "../src/interfaces/storage/ISessionStorage.sol";
import {IMarketplace} from "../src/interfaces/facets/IMarketplace.sol";
import {IProviderRegistry} from "../src/interfaces/facets/IProviderRegistry.sol";
import {IModelRegistry} from "../src/interfaces/facets/IModelRegistry.sol";
import {MorpheusToken} from "../src/mock/MorpheusToken.sol";
import {LibDiamondAccess} from "../src/diamond/utils/LibDiamondAccess.sol";

/// @notice The compute-budget maths of contracts.md §4.2/§4.3 against hand-computed values: the emission
///         curve, compute balance, supply, budget, stipend <-> stake, session end; the pool and duration
///         setters and getters; D8 (fewer than 4 pools); and fuzzed invariants (rounding, monotonicity,
///         bounds, conservation of MOR at closeSession).
contract EconomicsTest is MarketplaceTestBase {
    uint256 internal constant R0 = 3456 ether;
    uint256 internal constant DEC = 592558728240000000;
    uint256 internal constant R0_4 = 576 ether;
    uint256 internal constant DEC_4 = 98759788040000000;

    /// @dev At payoutStart + 10 days (START_TIME): n = 9 full days + half a day of pool 3.
    uint256 internal constant COMPUTE_AT_START = 32808001371506280000000;
    uint256 internal constant SUPPLY_AT_START = 103892004343103220000000;

    // ---------------------------------------------------------------------------------------------------
    // Hand formula (§4.2): with P at 12:00 UTC, sod(t) - P = n days + 43200 s
    // ---------------------------------------------------------------------------------------------------

    /// @dev poolReward(t) = n*R0 - D*n(n-1)/2 + (R0 - n*D)*43200/86400, 0 while sod(t) <= P.
    function _handPool(uint256 r0_, uint256 dec_, uint256 t_) internal pure returns (uint256) {
        uint256 sod_ = t_ - (t_ % 1 days);
        if (sod_ <= PAYOUT_START) return 0;
        uint256 n_ = (sod_ - PAYOUT_START) / 1 days;
        return n_ * r0_ - (dec_ * (n_ * (n_ == 0 ? 0 : n_ - 1))) / 2 + ((r0_ - n_ * dec_) * 43200) / 86400;
    }

    function _handCompute(uint256 t_) internal pure returns (uint256) {
        return _handPool(R0, DEC, t_);
    }

    function _handSupply(uint256 t_) internal pure returns (uint256) {
        return 3 * _handPool(R0, DEC, t_) + _handPool(R0_4, DEC_4, t_);
    }

    // ---------------------------------------------------------------------------------------------------
    // Compute balance, supply, budget
    // ---------------------------------------------------------------------------------------------------

    function test_computeBalance_atPayoutStartPlus10Days() public view {
        uint128 t_ = uint128(START_TIME);
        assertEq(sessionRouter.getComputeBalance(t_), COMPUTE_AT_START, "32808.00137150628 MOR");
        assertEq(sessionRouter.getComputeBalance(t_), 32808001371506280000000, "exact wei");
        assertEq(_handCompute(t_), COMPUTE_AT_START, "hand formula");
        assertEq(sessionRouter.totalMORSupply(t_), SUPPLY_AT_START, "supply");
        assertEq(sessionRouter.getTodaysBudget(t_), COMPUTE_AT_START / 100, "budget = 1 %");
        assertEq(sessionRouter.getTodaysBudget(t_), 328080013715062800000, "budget wei");
        // compute / supply = 6 / 19 exactly with the default pools.
        assertEq(sessionRouter.getComputeBalance(t_) * 19, sessionRouter.totalMORSupply(t_) * 6, "6/19");
    }

    function test_computeBalance_isConstantWithinADay() public view {
        uint256 day_ = _startOfDay(START_TIME);
        assertEq(sessionRouter.getComputeBalance(uint128(day_)), COMPUTE_AT_START, "00:00");
        assertEq(sessionRouter.getComputeBalance(uint128(day_ + 1 days - 1)), COMPUTE_AT_START, "23:59:59");
        assertEq(sessionRouter.totalMORSupply(uint128(day_ + 1 days - 1)), SUPPLY_AT_START, "supply 23:59:59");
        assertGt(sessionRouter.getComputeBalance(uint128(day_ + 1 days)), COMPUTE_AT_START, "grows at midnight");
    }

    function test_emission_atSeveralTimes() public view {
        uint256[8] memory times_ = [
            uint256(PAYOUT_START) + 43200, // first midnight after payoutStart: half a day
            uint256(PAYOUT_START) + 129600,
            START_TIME,
            uint256(PAYOUT_START) + 100 days,
            uint256(PAYOUT_START) + 1000 days,
            uint256(PAYOUT_START) + 3333 days + 7777,
            uint256(PAYOUT_START) + 5832 days,
            uint256(PAYOUT_START) + 5832 days + 43199
        ];
        for (uint256 i = 0; i < times_.length; i++) {
            uint128 t_ = uint128(times_[i]);
            uint256 compute_ = sessionRouter.getComputeBalance(t_);
            uint256 supply_ = sessionRouter.totalMORSupply(t_);
            assertEq(compute_, _handCompute(t_), string.concat("compute #", vm.toString(i)));
            assertEq(supply_, _handSupply(t_), string.concat("supply #", vm.toString(i)));
            assertEq(sessionRouter.getTodaysBudget(t_), compute_ / 100, string.concat("budget #", vm.toString(i)));
            assertEq(compute_ * 19, supply_ * 6, string.concat("6/19 #", vm.toString(i)));
        }
        // Literal values (independently computed).
        assertEq(sessionRouter.getComputeBalance(uint128(PAYOUT_START) + 43200), 1728 ether, "R0 / 2");
        assertEq(sessionRouter.totalMORSupply(uint128(PAYOUT_START) + 43200), 5472 ether, "3 * 1728 + 288");
        assertEq(sessionRouter.getComputeBalance(uint128(PAYOUT_START) + 129600), 5183703720635880000000, "1.5 days");
        assertEq(sessionRouter.totalMORSupply(uint128(PAYOUT_START) + 129600), 16415061782013620000000, "supply 1.5 days");
        assertEq(sessionRouter.getComputeBalance(uint128(PAYOUT_START) + 100 days), 340968165952259880000000, "99.5 days");
        assertEq(sessionRouter.totalMORSupply(uint128(PAYOUT_START) + 100 days), 1079732525515489620000000, "supply 99.5 d");
        assertEq(sessionRouter.getComputeBalance(uint128(PAYOUT_START) + 1000 days), 3158584898328875880000000, "999.5 days");
        assertEq(sessionRouter.totalMORSupply(uint128(PAYOUT_START) + 1000 days), 10002185511374773620000000, "supply 999.5 d");
    }

    function test_beforePayoutStart_everythingIsZero() public {
        uint128[4] memory times_ = [uint128(0), uint128(PAYOUT_START) - 1 days, uint128(PAYOUT_START), uint128(PAYOUT_START) + 43199];
        for (uint256 i = 0; i < times_.length; i++) {
            uint128 t_ = times_[i];
            string memory n_ = vm.toString(i);
            assertEq(sessionRouter.getComputeBalance(t_), 0, string.concat("compute #", n_));
            assertEq(sessionRouter.totalMORSupply(t_), 0, string.concat("supply #", n_));
            assertEq(sessionRouter.getTodaysBudget(t_), 0, string.concat("budget #", n_));
            assertEq(sessionRouter.stakeToStipend(SESSION_STAKE, t_), 0, string.concat("stipend #", n_));
            assertEq(sessionRouter.stipendToStake(1 ether, t_), 0, string.concat("stake #", n_));
            assertEq(uint256(sessionRouter.getSessionEnd(SESSION_STAKE, PRICE, t_)), uint256(t_), string.concat("end #", n_));
        }

        // Opening a session before payoutStart gives SessionTooShort (supply is 0).
        vm.warp(uint256(PAYOUT_START) - 1 hours);
        (, bytes32 bidId_) = _defaultBid();
        bytes memory approval_ = _approvalNow(bidId_);
        bytes memory signature_ = _sign(PROVIDER_KEY, approval_);
        vm.prank(user);
        vm.expectRevert(ISessionRouter.SessionTooShort.selector);
        sessionRouter.openSession(user, SESSION_STAKE, false, approval_, signature_);
    }

    function test_startOfTheDay() public view {
        assertEq(uint256(sessionRouter.startOfTheDay(0)), 0, "0");
        assertEq(uint256(sessionRouter.startOfTheDay(86399)), 0, "86399");
        assertEq(uint256(sessionRouter.startOfTheDay(86400)), 86400, "86400");
        assertEq(uint256(sessionRouter.startOfTheDay(uint128(START_TIME))), START_TIME - 43200, "START (12:00)");
        assertEq(uint256(sessionRouter.startOfTheDay(uint128(PAYOUT_START))), 1707350400, "2024-02-08 00:00");
        uint128 max_ = type(uint128).max;
        assertEq(uint256(sessionRouter.startOfTheDay(max_)), uint256(max_) - (uint256(max_) % 86400), "max");
    }

    // ---------------------------------------------------------------------------------------------------
    // Stipend, stake and session end
    // ---------------------------------------------------------------------------------------------------

    function test_stakeToStipend_stipendToStake_handValues() public view {
        uint128 t_ = uint128(START_TIME);
        // stipend = amount * compute / (supply * 100) = amount * 6 / 1900.
        assertEq(sessionRouter.stakeToStipend(SESSION_STAKE, t_), 157894736842105263, "50 MOR -> 0.157894736842105263");
        assertEq(sessionRouter.stakeToStipend(1900 ether, t_), 6 ether, "1900 MOR -> 6 MOR");
        assertEq(sessionRouter.stakeToStipend(0, t_), 0, "0");
        // stake = stipend * supply * 100 / compute = stipend * 1900 / 6.
        assertEq(sessionRouter.stipendToStake(6 ether, t_), 1900 ether, "6 MOR -> 1900 MOR");
        assertEq(sessionRouter.stipendToStake(PRICE, t_), 31666666666666666, "1 s of stipend");
        // The same at another day (the ratio is constant with the default pools).
        uint128 t2_ = uint128(PAYOUT_START) + 1000 days;
        assertEq(sessionRouter.stakeToStipend(SESSION_STAKE, t2_), 157894736842105263, "50 MOR at +1000 days");
        assertEq(sessionRouter.stipendToStake(6 ether, t2_), 1900 ether, "6 MOR at +1000 days");
    }

    function test_getSessionEnd_handValues() public view {
        uint128 t_ = uint128(START_TIME);
        assertEq(uint256(sessionRouter.getSessionEnd(SESSION_STAKE, PRICE, t_)), START_TIME + 1578, "50 MOR: 1578 s");
        assertEq(uint256(sessionRouter.getSessionEnd(1000 ether, PRICE, t_)), START_TIME + 31578, "1000 MOR: 31578 s");
        assertEq(uint256(sessionRouter.getSessionEnd(114 ether, PRICE, t_)), START_TIME + 3600, "114 MOR: 1 h");
        assertEq(uint256(sessionRouter.getSessionEnd(1_000_000 ether, PRICE, t_)), START_TIME + 1 days, "capped at max");
        assertEq(uint256(sessionRouter.getSessionEnd(SESSION_STAKE, 2 * PRICE, t_)), START_TIME + 789, "double price");
        // At another time with the same ratio, and with an arbitrary openedAt in the past.
        uint128 t2_ = uint128(PAYOUT_START) + 100 days;
        assertEq(uint256(sessionRouter.getSessionEnd(SESSION_STAKE, PRICE, t2_)), uint256(t2_) + 1578, "+100 days");
    }

    function test_50MorBuys1578Seconds() public {
        (, bytes32 bidId_) = _defaultBid();
        bytes32 sessionId_ = _openSession(bidId_, SESSION_STAKE, false);
        ISessionStorage.Session memory s_ = sessionRouter.getSession(sessionId_);
        assertEq(uint256(s_.openedAt), START_TIME, "openedAt");
        assertEq(uint256(s_.endsAt - s_.openedAt), 1578, "50 MOR buys 1578 s at 0.0001 MOR/s");
    }

    function test_oneHourNeeds114Mor() public {
        assertEq(sessionRouter.stipendToStake(3600 * PRICE, uint128(START_TIME)), 114 ether, "one hour = 114 MOR");
        (, bytes32 bidId_) = _defaultBid();
        bytes32 s1_ = _openSession(bidId_, 114 ether, false);
        ISessionStorage.Session memory a_ = sessionRouter.getSession(s1_);
        assertEq(uint256(a_.endsAt - a_.openedAt), 3600, "114 MOR: exactly 1 h");
        vm.warp(block.timestamp + 1);
        bytes32 s2_ = _openSession(bidId_, 114 ether - 1, false);
        ISessionStorage.Session memory b_ = sessionRouter.getSession(s2_);
        assertEq(uint256(b_.endsAt - b_.openedAt), 3599, "1 wei less: 3599 s");
    }

    /// @dev The router sizes the stake as supply * price * duration / budget (§4.3, §7 (d)).
    function test_routerInversion_opensAtLeastDurationMinusOne() public {
        _registerProvider(provider, PROVIDER_STAKE);
        bytes32 modelId_ = _registerModel(provider, BASE_MODEL_ID, MODEL_STAKE);
        uint256[2] memory prices_ = [PRICE, 0.00123 ether];
        uint256[5] memory durations_ = [uint256(300), 1000, 3600, 7200, 40000];
        for (uint256 p = 0; p < prices_.length; p++) {
            bytes32 bidId_ = _postBid(provider, modelId_, prices_[p]);
            for (uint256 i = 0; i < durations_.length; i++) {
                vm.warp(block.timestamp + 1);
                uint128 now_ = uint128(block.timestamp);
                uint256 stake_ = (sessionRouter.totalMORSupply(now_) * prices_[p] * durations_[i]) /
                    sessionRouter.getTodaysBudget(now_);
                bytes32 sessionId_ = _openSession(bidId_, stake_, false);
                ISessionStorage.Session memory s_ = sessionRouter.getSession(sessionId_);
                uint256 got_ = s_.endsAt - s_.openedAt;
                assertGe(got_, durations_[i] - 1, "at least duration - 1");
                assertLe(got_, durations_[i], "at most duration");
            }
        }
    }

    function test_providersTotalClaimed_shiftsComputeAndSupply() public {
        (, bytes32 bidId_) = _defaultBid();
        bytes32 sessionId_ = _openSession(bidId_, SESSION_STAKE, false);
        vm.warp(block.timestamp + 1578);
        vm.prank(provider);
        sessionRouter.claimForProvider(sessionId_);
        uint256 claimed_ = 1578 * PRICE;
        assertEq(sessionRouter.getProvidersTotalClaimed(), claimed_, "claimed");

        uint128 t_ = uint128(START_TIME);
        assertEq(sessionRouter.getComputeBalance(t_), COMPUTE_AT_START - claimed_, "compute - claimed");
        assertEq(sessionRouter.getComputeBalance(t_), 32807843571506280000000, "compute wei");
        assertEq(sessionRouter.totalMORSupply(t_), SUPPLY_AT_START + claimed_, "supply + claimed");
        assertEq(sessionRouter.totalMORSupply(t_), 103892162143103220000000, "supply wei");
        assertEq(sessionRouter.getTodaysBudget(t_), (COMPUTE_AT_START - claimed_) / 100, "budget");
        assertEq(sessionRouter.stakeToStipend(SESSION_STAKE, t_), 157893737577220096, "stipend shrinks");
        assertEq(sessionRouter.stipendToStake(3600 * PRICE, t_), 114000721473813065771, "1 h costs more");
    }

    // ---------------------------------------------------------------------------------------------------
    // Pools
    // ---------------------------------------------------------------------------------------------------

    function test_getPools_getPool_defaults() public view {
        ISessionStorage.Pool[] memory pools_ = sessionRouter.getPools();
        assertEq(pools_.length, 5, "5 pools");
        for (uint256 i = 0; i < 5; i++) {
            ISessionStorage.Pool memory p_ = sessionRouter.getPool(i);
            assertEq(p_.initialReward, i == 4 ? R0_4 : R0, "initialReward");
            assertEq(p_.rewardDecrease, i == 4 ? DEC_4 : DEC, "rewardDecrease");
            assertEq(uint256(p_.payoutStart), PAYOUT_START, "payoutStart");
            assertEq(uint256(p_.decreaseInterval), 1 days, "decreaseInterval");
            assertEq(pools_[i].initialReward, p_.initialReward, "getPools == getPool");
            assertEq(pools_[i].rewardDecrease, p_.rewardDecrease, "getPools == getPool (decrease)");
        }
        assertEq(sessionRouter.getFundingAccount(), funding, "funding account");
        assertEq(uint256(sessionRouter.getMaxSessionDuration()), 1 days, "max session duration");
    }

    function test_getPool_outOfBounds_panics() public {
        vm.expectRevert(abi.encodeWithSignature("Panic(uint256)", 0x32));
        sessionRouter.getPool(5);
    }

    function test_setPoolConfig_onlyOwner() public {
        ISessionStorage.Pool memory p_ = ISessionStorage.Pool(1000 ether, 0, PAYOUT_START, 1 days);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(LibDiamondAccess.OwnableUnauthorizedAccount.selector, stranger));
        sessionRouter.setPoolConfig(3, p_);
        vm.prank(provider);
        vm.expectRevert(abi.encodeWithSelector(LibDiamondAccess.OwnableUnauthorizedAccount.selector, provider));
        sessionRouter.setPoolConfig(0, p_);
        assertEq(sessionRouter.getPool(3).initialReward, R0, "unchanged");
    }

    function test_setPoolConfig_indexOutOfBounds() public {
        ISessionStorage.Pool memory p_ = ISessionStorage.Pool(1000 ether, 0, PAYOUT_START, 1 days);
        vm.expectRevert(ISessionRouter.SessionPoolIndexOutOfBounds.selector);
        sessionRouter.setPoolConfig(5, p_);
        vm.expectRevert(ISessionRouter.SessionPoolIndexOutOfBounds.selector);
        sessionRouter.setPoolConfig(type(uint256).max, p_);
        sessionRouter.setPoolConfig(4, p_); // the last index is fine
        assertEq(sessionRouter.getPool(4).initialReward, 1000 ether, "pool 4 updated");
        assertEq(sessionRouter.getPools().length, 5, "no pool added");
    }

    function test_setPoolConfig_computePool_changesTheMaths() public {
        ISessionStorage.Pool memory p_ = ISessionStorage.Pool(1000 ether, 0, PAYOUT_START, 1 days);
        sessionRouter.setPoolConfig(3, p_);
        ISessionStorage.Pool memory got_ = sessionRouter.getPool(3);
        assertEq(got_.initialReward, 1000 ether, "initialReward");
        assertEq(got_.rewardDecrease, 0, "rewardDecrease");
        assertEq(uint256(got_.payoutStart), PAYOUT_START, "payoutStart");
        assertEq(uint256(got_.decreaseInterval), 1 days, "interval");

        uint128 t_ = uint128(START_TIME);
        assertEq(sessionRouter.getComputeBalance(t_), 9500 ether, "9.5 days * 1000 MOR");
        assertEq(sessionRouter.totalMORSupply(t_), SUPPLY_AT_START, "supply excludes pool 3");
        assertEq(sessionRouter.getTodaysBudget(t_), 95 ether, "budget");
        assertEq(sessionRouter.stakeToStipend(SESSION_STAKE, t_), 45720554050657552, "stipend");
        assertEq(uint256(sessionRouter.getSessionEnd(SESSION_STAKE, PRICE, t_)), START_TIME + 457, "end");
        assertEq(sessionRouter.stipendToStake(3600 * PRICE, t_), 393696016458075360000, "1 h");

        // A non-compute pool changes only the supply.
        sessionRouter.setPoolConfig(0, p_);
        assertEq(sessionRouter.totalMORSupply(t_), SUPPLY_AT_START - COMPUTE_AT_START + 9500 ether, "supply");
        assertEq(sessionRouter.getComputeBalance(t_), 9500 ether, "compute unchanged");
    }

    /// @dev §4.2: the curve pays R0 - k*D in interval k and stops after ceil(R0/D) intervals.
    ///      R0 = 100, D = 30: ceil(100/30) = 4 intervals paying 100, 70, 40, 10 = 220 MOR in total.
    function test_curveEndsAfterCeilR0OverD() public {
        sessionRouter.setPoolConfig(3, ISessionStorage.Pool(100 ether, 30 ether, PAYOUT_START, 1 days));
        // sod(t) - P = k days + 12 h.
        uint256[7] memory expected_ = [uint256(50 ether), 135 ether, 190 ether, 215 ether, 220 ether, 220 ether, 220 ether];
        uint256[7] memory k_ = [uint256(0), 1, 2, 3, 4, 5, 100];
        for (uint256 i = 0; i < k_.length; i++) {
            uint128 t_ = uint128(PAYOUT_START + 43200 + k_[i] * 1 days);
            assertEq(sessionRouter.getComputeBalance(t_), expected_[i], string.concat("k = ", vm.toString(k_[i])));
        }
        // Far in the future it has stopped growing.
        assertEq(sessionRouter.getComputeBalance(uint128(PAYOUT_START) + 50_000 days), 220 ether, "stopped");
        assertEq(sessionRouter.getTodaysBudget(uint128(PAYOUT_START) + 50_000 days), 2.2 ether, "budget stopped");

        // The default curve stops after ceil(3456 / 0.59255872824) = 5833 days.
        uint256 supplyA_ = sessionRouter.totalMORSupply(uint128(PAYOUT_START) + 5834 days);
        uint256 supplyB_ = sessionRouter.totalMORSupply(uint128(PAYOUT_START) + 9000 days);
        assertEq(supplyA_, supplyB_, "default pools stop after 5833 intervals");
        assertGt(supplyA_, sessionRouter.totalMORSupply(uint128(PAYOUT_START) + 5832 days), "still grew before");
    }

    function test_poolWithZeroDecrease_neverEnds_zeroInterval_isZero() public {
        sessionRouter.setPoolConfig(3, ISessionStorage.Pool(100 ether, 0, PAYOUT_START, 1 days));
        assertEq(sessionRouter.getComputeBalance(uint128(PAYOUT_START) + 50_000 days), 4_999_950 ether, "49999.5 days");
        sessionRouter.setPoolConfig(3, ISessionStorage.Pool(100 ether, 1 ether, PAYOUT_START, 0));
        assertEq(sessionRouter.getComputeBalance(uint128(START_TIME)), 0, "interval 0");
    }

    // ---------------------------------------------------------------------------------------------------
    // Max session duration
    // ---------------------------------------------------------------------------------------------------

    function test_setMaxSessionDuration() public {
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(LibDiamondAccess.OwnableUnauthorizedAccount.selector, stranger));
        sessionRouter.setMaxSessionDuration(7 days);

        vm.expectRevert(ISessionRouter.SessionMaxDurationTooShort.selector);
        sessionRouter.setMaxSessionDuration(299);
        vm.expectRevert(ISessionRouter.SessionMaxDurationTooShort.selector);
        sessionRouter.setMaxSessionDuration(0);
        assertEq(uint256(sessionRouter.getMaxSessionDuration()), 1 days, "unchanged");

        sessionRouter.setMaxSessionDuration(300);
        assertEq(uint256(sessionRouter.getMaxSessionDuration()), 300, "300 is the minimum");
        assertEq(uint256(sessionRouter.getSessionEnd(SESSION_STAKE, PRICE, uint128(START_TIME))), START_TIME + 300, "capped");

        sessionRouter.setMaxSessionDuration(7 days);
        assertEq(uint256(sessionRouter.getMaxSessionDuration()), 7 days, "7 days");
        assertEq(uint256(sessionRouter.getSessionEnd(1_000_000 ether, PRICE, uint128(START_TIME))), START_TIME + 7 days, "7 d cap");
        assertEq(uint256(sessionRouter.getSessionEnd(10_000 ether, PRICE, uint128(START_TIME))), START_TIME + 315789, "uncapped");
    }

    // ---------------------------------------------------------------------------------------------------
    // D8: fewer than 4 pools
    // ---------------------------------------------------------------------------------------------------

    function _configWithPools(uint256 count_) internal view returns (MarketplaceConfig memory cfg_) {
        cfg_ = _testConfig();
        ISessionStorage.Pool[] memory all_ = _defaultPools();
        ISessionStorage.Pool[] memory pools_ = new ISessionStorage.Pool[](count_);
        for (uint256 i = 0; i < count_; i++) pools_[i] = all_[i];
        cfg_.pools = pools_;
    }

    /// @dev D8: the reference panics (index out of bounds) with fewer than 4 pools; we return 0.
    function test_D8_fewerThanFourPools_computeBalanceIsZero() public {
        Deployment memory d3_ = _deployMarketplace(_configWithPools(3));
        ISessionRouter r_ = ISessionRouter(d3_.diamond);
        uint128 t_ = uint128(START_TIME);
        assertEq(r_.getPools().length, 3, "3 pools");
        assertEq(r_.getComputeBalance(t_), 0, "compute 0");
        assertEq(r_.getTodaysBudget(t_), 0, "budget 0");
        assertEq(r_.totalMORSupply(t_), 3 * COMPUTE_AT_START, "supply = pools 0..2");
        assertEq(r_.stakeToStipend(SESSION_STAKE, t_), 0, "stipend 0");
        assertEq(r_.stipendToStake(1 ether, t_), 0, "stake 0");
        assertEq(uint256(r_.getSessionEnd(SESSION_STAKE, PRICE, t_)), START_TIME, "end = openedAt");
        vm.expectRevert(ISessionRouter.SessionPoolIndexOutOfBounds.selector);
        r_.setPoolConfig(3, ISessionStorage.Pool(1, 0, PAYOUT_START, 1 days));

        // Opening a (non-direct) session there is SessionTooShort, never a panic.
        MorpheusToken token3_ = MorpheusToken(d3_.token);
        token3_.mint(provider, 10 ether);
        token3_.mint(user, 100 ether);
        vm.startPrank(provider);
        token3_.approve(d3_.diamond, type(uint256).max);
        IProviderRegistry(d3_.diamond).providerRegister(provider, 1 ether, "host:1");
        string[] memory tags_ = new string[](0);
        IModelRegistry(d3_.diamond).modelRegister(provider, BASE_MODEL_ID, bytes32(0), 0, 1 ether, "m", tags_);
        bytes32 bidId_ = IMarketplace(d3_.diamond).postModelBid(
            provider,
            IModelRegistry(d3_.diamond).getModelId(provider, BASE_MODEL_ID),
            PRICE
        );
        vm.stopPrank();
        vm.prank(user);
        token3_.approve(d3_.diamond, type(uint256).max);
        bytes memory approval_ = _approvalNow(bidId_);
        bytes memory signature_ = _sign(PROVIDER_KEY, approval_);
        vm.prank(user);
        vm.expectRevert(ISessionRouter.SessionTooShort.selector);
        r_.openSession(user, SESSION_STAKE, false, approval_, signature_);

        // A direct session does not need the budget and still works (D4).
        bytes memory approval2_ = _approval(bidId_, user, block.chainid, uint128(block.timestamp * 1000 + 1));
        bytes memory signature2_ = _sign(PROVIDER_KEY, approval2_);
        vm.prank(user);
        bytes32 sessionId_ = r_.openSession(user, 0.05 ether, true, approval2_, signature2_);
        ISessionStorage.Session memory s_ = r_.getSession(sessionId_);
        assertEq(uint256(s_.endsAt - s_.openedAt), 500, "direct: amount / price");
    }

    function test_D8_noPools_everythingZero() public {
        Deployment memory d0_ = _deployMarketplace(_configWithPools(0));
        ISessionRouter r_ = ISessionRouter(d0_.diamond);
        uint128 t_ = uint128(START_TIME);
        assertEq(r_.getPools().length, 0, "no pools");
        assertEq(r_.getComputeBalance(t_), 0, "compute");
        assertEq(r_.totalMORSupply(t_), 0, "supply");
        assertEq(r_.getTodaysBudget(t_), 0, "budget");
        assertEq(r_.stakeToStipend(SESSION_STAKE, t_), 0, "stipend");
        assertEq(uint256(r_.getSessionEnd(SESSION_STAKE, PRICE, t_)), START_TIME, "end");
    }

    // ---------------------------------------------------------------------------------------------------
    // Fuzz
    // ---------------------------------------------------------------------------------------------------

    function testFuzz_stipendRoundTrip(uint256 x_, uint256 t_) public view {
        x_ = bound(x_, 0, 1e30);
        uint128 ts_ = uint128(bound(t_, uint256(PAYOUT_START) + 43200, uint256(PAYOUT_START) + 20_000 days));
        uint256 stake_ = sessionRouter.stipendToStake(x_, ts_);
        uint256 back_ = sessionRouter.stakeToStipend(stake_, ts_);
        assertLe(back_, x_, "never more than the stipend");
        assertLe(x_ - back_, 1, "within 1 wei (compute/supply < 100)");
        assertGe(stake_, x_, "stake >= stipend (stipend is ~0.3 % of the stake)");
    }

    function testFuzz_stipendMonotonicInStake(uint256 a_, uint256 b_, uint256 t_) public view {
        a_ = bound(a_, 0, 1e30);
        b_ = bound(b_, 0, 1e30);
        if (a_ > b_) (a_, b_) = (b_, a_);
        uint128 ts_ = uint128(bound(t_, 0, uint256(PAYOUT_START) + 20_000 days));
        assertLe(sessionRouter.stakeToStipend(a_, ts_), sessionRouter.stakeToStipend(b_, ts_), "monotonic");
        assertLe(sessionRouter.getSessionEnd(a_, PRICE, ts_), sessionRouter.getSessionEnd(b_, PRICE, ts_), "end monotonic");
    }

    function testFuzz_sessionEndWithinBounds(uint256 amount_, uint256 price_, uint256 openedAt_, uint256 maxDur_) public {
        amount_ = bound(amount_, 0, 1e30);
        price_ = bound(price_, 1, 1e24);
        uint128 at_ = uint128(bound(openedAt_, 0, uint256(PAYOUT_START) + 20_000 days));
        uint128 max_ = uint128(bound(maxDur_, 300, 365 days));
        sessionRouter.setMaxSessionDuration(max_);
        uint256 end_ = sessionRouter.getSessionEnd(amount_, price_, at_);
        assertGe(end_, uint256(at_), "never before openedAt");
        assertLe(end_, uint256(at_) + max_, "never beyond maxSessionDuration");
        assertEq(end_ - at_, _min(sessionRouter.stakeToStipend(amount_, at_) / price_, max_), "formula");
    }

    function testFuzz_routerInversion(uint256 duration_, uint256 t_) public view {
        duration_ = bound(duration_, 300, 1 days);
        uint128 ts_ = uint128(bound(t_, uint256(PAYOUT_START) + 43200, uint256(PAYOUT_START) + 7000 days));
        uint256 stake_ = (sessionRouter.totalMORSupply(ts_) * PRICE * duration_) / sessionRouter.getTodaysBudget(ts_);
        uint256 got_ = sessionRouter.getSessionEnd(stake_, PRICE, ts_) - ts_;
        assertGe(got_, duration_ - 1, "at least duration - 1");
        assertLe(got_, duration_, "at most duration");
    }

    struct Snap {
        uint256 provider;
        uint256 user;
        uint256 funding;
        uint256 diamond;
        uint256 total;
    }

    function _snap() internal view returns (Snap memory s_) {
        s_.provider = token.balanceOf(provider);
        s_.user = token.balanceOf(user);
        s_.funding = token.balanceOf(funding);
        s_.diamond = token.balanceOf(d.diamond);
        s_.total = _totalHeld();
    }

    function _min(uint256 a_, uint256 b_) internal pure returns (uint256) {
        return a_ < b_ ? a_ : b_;
    }

    struct FuzzCtx {
        uint256 price;
        uint256 stake;
        bool disputed;
        bool direct;
        bytes32 sessionId;
        uint256 openedAt;
        uint256 endsAt;
        uint256 closeAt;
        uint256 elapsed;
        bool early;
        uint256 sod;
        uint256 total0;
        uint256 lock;
        uint256 lateLock;
    }

    /// @dev For any stake, price, close time, dispute flag and payment mode: closeSession moves MOR only
    ///      between the accounts (sum unchanged), user refund + lock (+ direct payment) = stake, provider
    ///      payout + held part = elapsed * price, and the next-day claim / withdrawal settle everything.
    function testFuzz_closeSessionConservesMor(
        uint256 stakeSeed_,
        uint256 priceSeed_,
        uint256 closeSeed_,
        bool disputed_,
        bool direct_
    ) public {
        FuzzCtx memory c_;
        c_.disputed = disputed_;
        c_.direct = direct_;
        c_.price = bound(priceSeed_, MIN_PRICE, 0.01 ether);
        _fuzzOpen(c_, stakeSeed_, closeSeed_);
        Snap memory b_ = _fuzzClose(c_);
        _fuzzSettle(c_, b_);
    }

    function _fuzzOpen(FuzzCtx memory c_, uint256 stakeSeed_, uint256 closeSeed_) internal {
        // A large provider stake so the 365-day limiter never binds (max earnings 864 MOR).
        _registerProvider(provider, 100_000 ether);
        bytes32 modelId_ = _registerModel(provider, BASE_MODEL_ID, MODEL_STAKE);
        bytes32 bidId_ = _postBid(provider, modelId_, c_.price);

        uint256 minStake_ = c_.direct
            ? 300 * c_.price
            : sessionRouter.stipendToStake(301 * c_.price, uint128(block.timestamp)) + 1;
        c_.stake = bound(stakeSeed_, minStake_, 500_000 ether);

        c_.total0 = _totalHeld();
        c_.sessionId = _openSession(bidId_, c_.stake, c_.direct);
        assertEq(_totalHeld(), c_.total0, "open conserves");
        ISessionStorage.Session memory s_ = sessionRouter.getSession(c_.sessionId);
        c_.openedAt = s_.openedAt;
        c_.endsAt = s_.endsAt;
        uint256 duration_ = c_.endsAt - c_.openedAt;
        assertGe(duration_, 300, "at least 5 minutes");

        c_.closeAt = c_.openedAt + bound(closeSeed_, 0, duration_ + 2 days);
        c_.elapsed = _min(c_.closeAt, c_.endsAt) - c_.openedAt;
        c_.early = c_.closeAt < c_.endsAt;
        c_.sod = _startOfDay(c_.closeAt);
    }

    function _fuzzClose(FuzzCtx memory c_) internal returns (Snap memory b_) {
        vm.warp(c_.closeAt);
        c_.lateLock = _expectedLateLock(c_);
        b_ = _snap();
        _closeSession(c_.sessionId, c_.disputed ? USER_KEY : PROVIDER_KEY);
        Snap memory a_ = _snap();
        assertEq(a_.total, b_.total, "close conserves the sum of balances");

        uint256 refund_ = a_.user - b_.user;
        uint256 paid_ = a_.provider - b_.provider;
        (uint256 avail_, uint256 hold_) = sessionRouter.getUserStakesOnHold(user, 0);
        c_.lock = avail_ + hold_;
        assertLe(refund_, c_.stake, "user never gets more than the stake back");
        assertLe(paid_, c_.elapsed * c_.price, "provider never gets more than elapsed * price");

        uint256 held_ = c_.elapsed * c_.price - paid_;
        uint256 expectedHeld_ = (c_.disputed && c_.early) ? (c_.closeAt - _max(c_.sod, c_.openedAt)) * c_.price : 0;
        assertEq(held_, expectedHeld_, "held part = today's part of a disputed early close");

        if (c_.direct) {
            assertEq(c_.lock, 0, "D4: no user lock for direct sessions");
            assertEq(refund_ + c_.elapsed * c_.price, c_.stake, "refund + payment = stake");
            assertEq(a_.funding, b_.funding, "funding untouched");
            assertEq(b_.diamond - a_.diamond, refund_ + paid_, "diamond pays refund and provider");
        } else {
            assertEq(refund_ + c_.lock, c_.stake, "refund + lock = stake");
            assertEq(b_.funding - a_.funding, paid_, "funding pays the provider");
            assertEq(b_.diamond - a_.diamond, refund_, "diamond pays the refund");
            if (!c_.early) assertEq(c_.lock, c_.lateLock, "late close: v7.8 lock of the day of endsAt");
        }
    }

    /// @dev v7.8: what a late close (at `closeAt`, read before it) locks: the stake of the stipend used on
    ///      the day of endsAt, while that day lasts.
    function _expectedLateLock(FuzzCtx memory c_) internal view returns (uint256 lock_) {
        if (c_.early || c_.direct) return 0;
        uint256 endsSod_ = _startOfDay(c_.endsAt);
        if (c_.closeAt >= endsSod_ + 1 days) return 0;
        lock_ = sessionRouter.stipendToStake((c_.endsAt - _max(endsSod_, c_.openedAt)) * c_.price, uint128(endsSod_));
        if (lock_ > c_.stake) lock_ = c_.stake;
    }

    /// @dev Next UTC day: the held part is claimable and the lock withdrawable; everything is settled.
    function _fuzzSettle(FuzzCtx memory c_, Snap memory b_) internal {
        vm.warp(c_.sod + 1 days);
        vm.prank(provider);
        sessionRouter.claimForProvider(c_.sessionId);
        uint256 due_ = c_.elapsed * c_.price;
        assertEq(token.balanceOf(provider) - b_.provider, due_, "provider gets exactly elapsed * price");
        assertEq(sessionRouter.getSession(c_.sessionId).providerWithdrawnAmount, due_, "withdrawn");
        if (c_.lock > 0) {
            vm.prank(user);
            sessionRouter.withdrawUserStakes(user, 1);
        }
        Snap memory e_ = _snap();
        assertEq(e_.user - b_.user, c_.direct ? c_.stake - due_ : c_.stake, "user settled");
        assertEq(e_.total, c_.total0, "conserved end to end");
        if (!c_.direct) {
            assertEq(b_.funding - e_.funding, due_, "funding paid everything");
        } else {
            assertEq(e_.funding, b_.funding, "funding never pays direct sessions");
        }
    }

    function _max(uint256 a_, uint256 b_) internal pure returns (uint256) {
        return a_ > b_ ? a_ : b_;
    }
}

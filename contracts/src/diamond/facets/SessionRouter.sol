// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

import {ISessionRouter} from "../../interfaces/facets/ISessionRouter.sol";
import {IStatsStorage} from "../../interfaces/storage/IStatsStorage.sol";
import {IBidStorage} from "../../interfaces/storage/IBidStorage.sol";
import {IProviderStorage} from "../../interfaces/storage/IProviderStorage.sol";
import {FacetBase} from "../utils/FacetBase.sol";
import {LibStorages} from "../storages/LibStorages.sol";
import {LibPaginator} from "../../libs/LibPaginator.sol";
import {LibSD} from "../../libs/LibSD.sol";
import {LibEmission} from "../../libs/LibEmission.sol";

/// @notice Session facet: opening sessions against a provider-signed approval, closing them with a receipt
///         (provider-signed, or a dispute), paying providers through the 365-day earning limiter, user
///         on-hold stakes, the compute-budget maths and the on-chain performance statistics.
/// @dev Economics follow the reference (docs/contracts.md lists every deliberate deviation, D1..Dn).
contract SessionRouter is ISessionRouter, IStatsStorage, FacetBase {
    using EnumerableSet for EnumerableSet.Bytes32Set;
    using LibPaginator for EnumerableSet.Bytes32Set;
    using LibSD for LibSD.SD;

    uint32 internal constant MIN_SESSION_DURATION = 5 minutes;
    uint32 internal constant SIGNATURE_TTL = 10 minutes;
    uint256 internal constant COMPUTE_POOL_INDEX = 3;
    uint128 internal constant PROVIDER_REWARD_LIMITER_PERIOD = 365 days;
    /// @dev Timestamps at or above this are milliseconds (1e11 s is the year 5138; 1e11 ms is 1973).
    uint256 internal constant MILLISECONDS_THRESHOLD = 1e11;

    // ---------------------------------------------------------------------------------------------------
    // Owner configuration
    // ---------------------------------------------------------------------------------------------------

    function __SessionRouter_init(
        address fundingAccount_,
        uint128 maxSessionDuration_,
        Pool[] calldata pools_
    ) external ownerInitializer(LibStorages.SESSIONS_STORAGE_SLOT) {
        LibStorages.SessionsStorage storage s_ = LibStorages.sessions();
        _setMaxSessionDuration(maxSessionDuration_);
        s_.fundingAccount = fundingAccount_;
        for (uint256 i = 0; i < pools_.length; i++) {
            s_.pools.push(pools_[i]);
        }
    }

    function setPoolConfig(uint256 index_, Pool calldata pool_) external onlyOwner {
        LibStorages.SessionsStorage storage s_ = LibStorages.sessions();
        if (index_ >= s_.pools.length) revert SessionPoolIndexOutOfBounds();
        s_.pools[index_] = pool_;
    }

    function setMaxSessionDuration(uint128 maxSessionDuration_) external onlyOwner {
        _setMaxSessionDuration(maxSessionDuration_);
    }

    // ---------------------------------------------------------------------------------------------------
    // Open
    // ---------------------------------------------------------------------------------------------------

    function openSession(
        address user_,
        uint256 amount_,
        bool isDirectPaymentFromUser_,
        bytes calldata approvalEncoded_,
        bytes calldata signature_
    ) external returns (bytes32 sessionId_) {
        _validateDelegatee(msg.sender, user_, RULES_SESSION);
        bytes32 bidId_ = _useApproval(user_, approvalEncoded_, signature_);
        uint128 endsAt_ = _newSessionEnd(bidId_, amount_, isDirectPaymentFromUser_);

        sessionId_ = _storeSession(user_, bidId_, amount_, isDirectPaymentFromUser_, endsAt_);
        SafeERC20.safeTransferFrom(_token(), user_, address(this), amount_);

        emit SessionOpened(user_, sessionId_, LibStorages.bids().bids[bidId_].provider);
    }

    function _newSessionEnd(bytes32 bidId_, uint256 amount_, bool isDirect_) private view returns (uint128 endsAt_) {
        uint256 price_ = LibStorages.bids().bids[bidId_].pricePerSecond;
        uint128 now_ = uint128(block.timestamp);
        endsAt_ = isDirect_ ? _directSessionEnd(amount_, price_, now_) : getSessionEnd(amount_, price_, now_);
        if (endsAt_ - now_ < MIN_SESSION_DURATION) revert SessionTooShort();
        if (isDirect_ && (endsAt_ - now_) * price_ > amount_) revert SessionStakeTooLow();
    }

    function _storeSession(
        address user_,
        bytes32 bidId_,
        uint256 amount_,
        bool isDirect_,
        uint128 endsAt_
    ) private returns (bytes32 sessionId_) {
        LibStorages.SessionsStorage storage s_ = LibStorages.sessions();
        IBidStorage.Bid storage bid = LibStorages.bids().bids[bidId_];

        sessionId_ = getSessionId(user_, bid.provider, bidId_, s_.sessionNonce++);
        Session storage session = s_.sessions[sessionId_];
        session.user = user_;
        session.bidId = bidId_;
        session.stake = amount_;
        session.openedAt = uint128(block.timestamp);
        session.endsAt = endsAt_;
        session.isActive = true;
        session.isDirectPaymentFromUser = isDirect_;

        s_.userSessions[user_].add(sessionId_);
        s_.providerSessions[bid.provider].add(sessionId_);
        s_.modelSessions[bid.modelId].add(sessionId_);
    }

    /// @dev Checks a provider approval for `user_` and marks it used; returns its bid id.
    function _useApproval(
        address user_,
        bytes calldata approvalEncoded_,
        bytes calldata signature_
    ) private returns (bytes32 bidId_) {
        uint256 chainId_;
        address approvedUser_;
        uint128 timestamp_;
        (bidId_, chainId_, approvedUser_, timestamp_) = abi.decode(approvalEncoded_, (bytes32, uint256, address, uint128));
        if (chainId_ != block.chainid) revert SessionApprovedForAnotherChainId();
        if (_isExpired(timestamp_)) revert SessionApproveExpired();
        if (approvedUser_ != user_) revert SessionApprovedForAnotherUser();

        if (!LibStorages.isBidActive(bidId_)) revert SessionBidNotFound();
        address provider_ = LibStorages.bids().bids[bidId_].provider;
        if (!_isProviderSignature(provider_, approvalEncoded_, signature_)) revert SessionProviderSignatureMismatch();

        LibStorages.SessionsStorage storage s_ = LibStorages.sessions();
        if (s_.isProviderApprovalUsed[approvalEncoded_]) revert SessionDuplicateApproval();
        s_.isProviderApprovalUsed[approvalEncoded_] = true;
    }

    // ---------------------------------------------------------------------------------------------------
    // Close
    // ---------------------------------------------------------------------------------------------------

    function closeSession(bytes calldata receiptEncoded_, bytes calldata signature_) external {
        // Receipts of the current routers carry two more words (token counts); only the first five are read.
        (bytes32 sessionId_, uint256 chainId_, uint128 timestamp_, uint32 tpsScaled1000_, uint32 ttftMs_) = abi.decode(
            receiptEncoded_,
            (bytes32, uint256, uint128, uint32, uint32)
        );
        if (chainId_ != block.chainid) revert SessionReceiptForAnotherChainId();
        if (_isExpired(timestamp_)) revert SessionReceiptExpired();

        Session storage session = LibStorages.sessions().sessions[sessionId_];
        _validateDelegatee(msg.sender, session.user, RULES_SESSION);
        if (session.closedAt != 0) revert SessionAlreadyClosed();

        IBidStorage.Bid storage bid = LibStorages.bids().bids[session.bidId];
        bool noDispute_ = _isProviderSignature(bid.provider, receiptEncoded_, signature_);

        session.isActive = false;
        session.closeoutReceipt = receiptEncoded_;
        session.closedAt = uint128(block.timestamp);
        if (!noDispute_) session.closeoutType = 1;

        _refundUser(session, bid.pricePerSecond);
        _payProviderAtClose(session, bid, noDispute_);
        _updateStats(session, bid, noDispute_, tpsScaled1000_, ttftMs_);

        emit SessionClosed(session.user, sessionId_, bid.provider);
    }

    /// @dev User side of a close: the direct-payment share goes to the provider; otherwise the stake that
    ///      bought the stipend used on the day of `min(closedAt, endsAt)` stays on hold until the next UTC
    ///      day (v7.8: late and same-day closes too, so a stake cannot buy a day's stipend twice), unless
    ///      that day is already over; the rest comes back now.
    function _refundUser(Session storage session, uint256 price_) private {
        uint128 end_ = _min128(session.closedAt, session.endsAt);
        uint256 toProvider_ = session.isDirectPaymentFromUser ? (end_ - session.openedAt) * price_ : 0;
        uint256 userStake_ = session.stake - toProvider_;

        uint256 lock_ = 0;
        uint128 startOfDay_ = startOfTheDay(end_);
        if (!session.isDirectPaymentFromUser && block.timestamp < uint256(startOfDay_) + 1 days) {
            uint128 from_ = _max128(session.openedAt, startOfDay_);
            uint256 usedToday_ = end_ > from_ ? (end_ - from_) * price_ : 0;
            lock_ = stipendToStake(usedToday_, startOfDay_);
            if (lock_ > userStake_) lock_ = userStake_;
            if (lock_ > 0) {
                LibStorages.sessions().userStakesOnHold[session.user].push(
                    OnHold({amount: lock_, releaseAt: startOfDay_ + 1 days})
                );
            }
        }

        if (userStake_ > lock_) SafeERC20.safeTransfer(_token(), session.user, userStake_ - lock_);
    }

    /// @dev Provider side of a close: everything earned, minus today's part when the receipt is disputed and
    ///      the session closed before its end (that part becomes claimable the next UTC day).
    function _payProviderAtClose(Session storage session, IBidStorage.Bid storage bid, bool noDispute_) private {
        uint256 earned_ = _earned(session, bid.pricePerSecond, _min128(session.closedAt, session.endsAt));
        uint256 onHold_ = noDispute_ ? 0 : _disputedOnHold(session, bid.pricePerSecond);
        if (earned_ > onHold_) _payProvider(session, bid.provider, earned_ - onHold_);
    }

    function _updateStats(
        Session storage session,
        IBidStorage.Bid storage bid,
        bool noDispute_,
        uint32 tpsScaled1000_,
        uint32 ttftMs_
    ) private {
        LibStorages.StatsStorage storage st_ = LibStorages.stats();
        ProviderModelStats storage pm = st_.providerModelStats[bid.modelId][bid.provider];
        ModelStats storage ms = st_.modelStats[bid.modelId];

        pm.totalCount++;
        if (!noDispute_) return;

        if (pm.successCount > 0) {
            ms.tpsScaled1000.remove(pm.tpsScaled1000.mean, int256(uint256(ms.count)) - 1);
            ms.ttftMs.remove(pm.ttftMs.mean, int256(uint256(ms.count)) - 1);
        } else {
            ms.count++;
        }

        pm.successCount++;
        pm.totalDuration += uint32(session.closedAt - session.openedAt);
        pm.tpsScaled1000.add(int256(uint256(tpsScaled1000_)), int256(uint256(pm.successCount)));
        pm.ttftMs.add(int256(uint256(ttftMs_)), int256(uint256(pm.successCount)));

        int256 count_ = int256(uint256(ms.count));
        ms.totalDuration.add(int256(uint256(pm.totalDuration)), count_);
        ms.tpsScaled1000.add(pm.tpsScaled1000.mean, count_);
        ms.ttftMs.add(pm.ttftMs.mean, count_);
    }

    // ---------------------------------------------------------------------------------------------------
    // Provider claims and user withdrawals
    // ---------------------------------------------------------------------------------------------------

    function claimForProvider(bytes32 sessionId_) external {
        Session storage session = LibStorages.sessions().sessions[sessionId_];
        IBidStorage.Bid storage bid = LibStorages.bids().bids[session.bidId];
        _validateDelegatee(msg.sender, bid.provider, RULES_SESSION);

        uint128 end_ = session.closedAt == 0 ? session.endsAt : _min128(session.closedAt, session.endsAt);
        if (block.timestamp < end_) return;

        uint256 rewards_ = _earned(session, bid.pricePerSecond, end_);
        uint256 onHold_ = 0;
        if (session.closeoutType == 1 && block.timestamp < uint256(startOfTheDay(session.closedAt)) + 1 days) {
            onHold_ = _disputedOnHold(session, bid.pricePerSecond);
        }
        if (rewards_ > onHold_) _payProvider(session, bid.provider, rewards_ - onHold_);
    }

    function withdrawUserStakes(address user_, uint8 iterations_) external {
        _validateDelegatee(msg.sender, user_, RULES_SESSION);

        OnHold[] storage onHold = LibStorages.sessions().userStakesOnHold[user_];
        uint256 length_ = onHold.length;
        uint256 count_ = iterations_ < length_ ? iterations_ : length_;
        if (count_ == 0) revert SessionUserAmountToWithdrawIsZero();

        uint256 amount_ = 0;
        uint256 removed_ = 0;
        for (uint256 i = length_; i > 0 && removed_ < count_; i--) {
            OnHold storage entry = onHold[i - 1];
            if (block.timestamp < entry.releaseAt) continue;

            amount_ += entry.amount;
            onHold[i - 1] = onHold[onHold.length - 1];
            onHold.pop();
            removed_++;
        }
        if (amount_ == 0) revert SessionUserAmountToWithdrawIsZero();

        SafeERC20.safeTransfer(_token(), user_, amount_);
        emit UserWithdrawn(user_, amount_);
    }

    function getUserStakesOnHold(address user_, uint8) external view returns (uint256 available_, uint256 hold_) {
        OnHold[] storage onHold = LibStorages.sessions().userStakesOnHold[user_];
        for (uint256 i = 0; i < onHold.length; i++) {
            if (block.timestamp >= onHold[i].releaseAt) {
                available_ += onHold[i].amount;
            } else {
                hold_ += onHold[i].amount;
            }
        }
    }

    /// @dev Pays `amount_` (capped by the provider's 365-day limit) from the diamond for direct-payment
    ///      sessions and from the funding account otherwise. The unpaid rest stays claimable later.
    function _payProvider(Session storage session, address provider_, uint256 amount_) private {
        IProviderStorage.Provider storage provider = LibStorages.providers().providers[provider_];
        if (block.timestamp > provider.limitPeriodEnd) {
            provider.limitPeriodEnd = uint128(block.timestamp) + PROVIDER_REWARD_LIMITER_PERIOD;
            provider.limitPeriodEarned = 0;
        }

        uint256 limit_ = provider.stake > provider.limitPeriodEarned ? provider.stake - provider.limitPeriodEarned : 0;
        if (amount_ > limit_) amount_ = limit_;
        if (amount_ == 0) return;

        session.providerWithdrawnAmount += amount_;
        provider.limitPeriodEarned += amount_;
        LibStorages.SessionsStorage storage s_ = LibStorages.sessions();
        s_.providersTotalClaimed += amount_;

        if (session.isDirectPaymentFromUser) {
            SafeERC20.safeTransfer(_token(), provider_, amount_);
        } else {
            SafeERC20.safeTransferFrom(_token(), s_.fundingAccount, provider_, amount_);
        }
    }

    function _earned(Session storage session, uint256 price_, uint128 end_) private view returns (uint256) {
        uint256 total_ = (end_ - session.openedAt) * price_;
        return total_ > session.providerWithdrawnAmount ? total_ - session.providerWithdrawnAmount : 0;
    }

    /// @dev The disputed part withheld until the next UTC day: time used on the closing day, for an early close.
    function _disputedOnHold(Session storage session, uint256 price_) private view returns (uint256) {
        if (session.closedAt >= session.endsAt) return 0;
        uint128 startOfDay_ = startOfTheDay(session.closedAt);
        return (session.closedAt - _max128(startOfDay_, session.openedAt)) * price_;
    }

    // ---------------------------------------------------------------------------------------------------
    // Ids, signatures and maths
    // ---------------------------------------------------------------------------------------------------

    function getSessionId(
        address user_,
        address provider_,
        bytes32 bidId_,
        uint256 sessionNonce_
    ) public pure returns (bytes32) {
        return keccak256(abi.encodePacked(user_, provider_, bidId_, sessionNonce_));
    }

    function getSessionEnd(uint256 amount_, uint256 pricePerSecond_, uint128 openedAt_) public view returns (uint128) {
        if (pricePerSecond_ == 0) return openedAt_;
        return openedAt_ + _capDuration(stakeToStipend(amount_, openedAt_) / pricePerSecond_);
    }

    function stakeToStipend(uint256 amount_, uint128 timestamp_) public view returns (uint256) {
        uint256 supply_ = totalMORSupply(timestamp_);
        if (supply_ == 0) return 0;
        return (amount_ * getComputeBalance(timestamp_)) / (supply_ * 100);
    }

    function stipendToStake(uint256 stipend_, uint128 timestamp_) public view returns (uint256) {
        uint256 compute_ = getComputeBalance(timestamp_);
        if (compute_ == 0) return 0;
        return (stipend_ * totalMORSupply(timestamp_) * 100) / compute_;
    }

    function getTodaysBudget(uint128 timestamp_) external view returns (uint256) {
        return getComputeBalance(timestamp_) / 100;
    }

    function getComputeBalance(uint128 timestamp_) public view returns (uint256) {
        LibStorages.SessionsStorage storage s_ = LibStorages.sessions();
        if (s_.pools.length <= COMPUTE_POOL_INDEX) return 0;
        uint256 emitted_ = _poolReward(s_.pools[COMPUTE_POOL_INDEX], startOfTheDay(timestamp_));
        return emitted_ > s_.providersTotalClaimed ? emitted_ - s_.providersTotalClaimed : 0;
    }

    function totalMORSupply(uint128 timestamp_) public view returns (uint256 supply_) {
        LibStorages.SessionsStorage storage s_ = LibStorages.sessions();
        uint128 startOfDay_ = startOfTheDay(timestamp_);
        for (uint256 i = 0; i < s_.pools.length; i++) {
            if (i == COMPUTE_POOL_INDEX) continue;
            supply_ += _poolReward(s_.pools[i], startOfDay_);
        }
        supply_ += s_.providersTotalClaimed;
    }

    function startOfTheDay(uint128 timestamp_) public pure returns (uint128) {
        return timestamp_ - (timestamp_ % 1 days);
    }

    /// @dev Accepted signers: the provider, a PROVIDER-rights delegate, or the `owner()` of a contract provider.
    function _isProviderSignature(
        address provider_,
        bytes calldata message_,
        bytes calldata signature_
    ) private view returns (bool) {
        address signer_ = ECDSA.recover(ECDSA.toEthSignedMessageHash(keccak256(message_)), signature_);
        if (signer_ == provider_) return true;
        if (_isRightsDelegated(signer_, provider_, RULES_PROVIDER)) return true;
        if (provider_.code.length == 0) return false;

        (bool ok_, bytes memory result_) = provider_.staticcall(abi.encodeWithSignature("owner()"));
        return ok_ && result_.length == 32 && abi.decode(result_, (address)) == signer_;
    }

    /// @dev One-sided like the reference (a timestamp in the future is fine), but milliseconds are converted
    ///      to seconds first so the 10-minute validity really holds for the routers' millisecond stamps.
    function _isExpired(uint128 timestamp_) private view returns (bool) {
        uint256 seconds_ = timestamp_ >= MILLISECONDS_THRESHOLD ? timestamp_ / 1000 : timestamp_;
        return block.timestamp > seconds_ + SIGNATURE_TTL;
    }

    /// @dev Direct payment buys `amount / price` seconds (the reference uses the stipend formula here, which
    ///      makes direct sessions about 0.3 % as long as paid for).
    function _directSessionEnd(uint256 amount_, uint256 pricePerSecond_, uint128 openedAt_) private view returns (uint128) {
        if (pricePerSecond_ == 0) return openedAt_;
        return openedAt_ + _capDuration(amount_ / pricePerSecond_);
    }

    function _capDuration(uint256 duration_) private view returns (uint128) {
        uint128 max_ = LibStorages.sessions().maxSessionDuration;
        return duration_ > max_ ? max_ : uint128(duration_);
    }

    function _poolReward(Pool storage pool_, uint128 end_) private view returns (uint256) {
        return
            LibEmission.cumulativeReward(
                pool_.initialReward,
                pool_.rewardDecrease,
                pool_.payoutStart,
                pool_.decreaseInterval,
                end_
            );
    }

    function _setMaxSessionDuration(uint128 maxSessionDuration_) private {
        if (maxSessionDuration_ < MIN_SESSION_DURATION) revert SessionMaxDurationTooShort();
        LibStorages.sessions().maxSessionDuration = maxSessionDuration_;
    }

    function _min128(uint128 a_, uint128 b_) private pure returns (uint128) {
        return a_ < b_ ? a_ : b_;
    }

    function _max128(uint128 a_, uint128 b_) private pure returns (uint128) {
        return a_ > b_ ? a_ : b_;
    }

    // ---------------------------------------------------------------------------------------------------
    // Storage getters
    // ---------------------------------------------------------------------------------------------------

    function getSession(bytes32 sessionId_) external view returns (Session memory) {
        return LibStorages.sessions().sessions[sessionId_];
    }

    function getUserSessions(address user_, uint256 offset_, uint256 limit_) external view returns (bytes32[] memory, uint256) {
        return LibStorages.sessions().userSessions[user_].page(offset_, limit_);
    }

    function getProviderSessions(
        address provider_,
        uint256 offset_,
        uint256 limit_
    ) external view returns (bytes32[] memory, uint256) {
        return LibStorages.sessions().providerSessions[provider_].page(offset_, limit_);
    }

    function getModelSessions(
        bytes32 modelId_,
        uint256 offset_,
        uint256 limit_
    ) external view returns (bytes32[] memory, uint256) {
        return LibStorages.sessions().modelSessions[modelId_].page(offset_, limit_);
    }

    function getPools() external view returns (Pool[] memory) {
        return LibStorages.sessions().pools;
    }

    function getPool(uint256 index_) external view returns (Pool memory) {
        return LibStorages.sessions().pools[index_];
    }

    function getFundingAccount() external view returns (address) {
        return LibStorages.sessions().fundingAccount;
    }

    function getTotalSessions(address provider_) external view returns (uint256) {
        return LibStorages.sessions().providerSessions[provider_].length();
    }

    function getProvidersTotalClaimed() external view returns (uint256) {
        return LibStorages.sessions().providersTotalClaimed;
    }

    function getIsProviderApprovalUsed(bytes memory approval_) external view returns (bool) {
        return LibStorages.sessions().isProviderApprovalUsed[approval_];
    }

    function getMaxSessionDuration() external view returns (uint128) {
        return LibStorages.sessions().maxSessionDuration;
    }

    function getProviderModelStats(bytes32 modelId_, address provider_) external view returns (ProviderModelStats memory) {
        return LibStorages.stats().providerModelStats[modelId_][provider_];
    }

    function getModelStats(bytes32 modelId_) external view returns (ModelStats memory) {
        return LibStorages.stats().modelStats[modelId_];
    }
}

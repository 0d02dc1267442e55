// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice Cumulative emission of a linearly decreasing pool, as the reference's
///         LinearDistributionIntervalDecrease.getPeriodReward(R0, D, P, I, P, end) computes it.
/// @dev During interval k after `payoutStart` the pool pays `R0 - k*D` per `interval`; it stops at
///      `P + ceil(R0/D)*I` (never when D = 0). The running partial interval pays pro rata (truncated).
library LibEmission {
    function cumulativeReward(
        uint256 initialReward_,
        uint256 rewardDecrease_,
        uint128 payoutStart_,
        uint128 interval_,
        uint256 end_
    ) internal pure returns (uint256) {
        if (interval_ == 0 || end_ <= payoutStart_) return 0;

        if (rewardDecrease_ != 0) {
            uint256 periods_ = (initialReward_ + rewardDecrease_ - 1) / rewardDecrease_;
            uint256 maxEnd_ = uint256(payoutStart_) + periods_ * interval_;
            if (end_ > maxEnd_) end_ = maxEnd_;
        }

        uint256 elapsed_ = end_ - payoutStart_;
        uint256 n_ = elapsed_ / interval_;
        uint256 rest_ = elapsed_ % interval_;

        uint256 full_ = n_ * initialReward_ - rewardDecrease_ * (n_ == 0 ? 0 : (n_ * (n_ - 1)) / 2);
        if (rest_ == 0) return full_;
        return full_ + ((initialReward_ - n_ * rewardDecrease_) * rest_) / interval_;
    }
}

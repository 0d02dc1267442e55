// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice Running mean and sum of squared deviations (Welford) in int64, as the reference's LibSD.
/// @dev `n` is the number of observations AFTER the operation. Division truncates toward zero like the
///      reference. Unlike the reference, intermediates are computed in int256 and the stored values are
///      clamped to the int64 range, so extreme inputs can never make closeSession revert or wrap.
library LibSD {
    struct SD {
        int64 mean;
        int64 sqSum;
    }

    function add(SD storage sd_, int256 x_, int256 n_) internal {
        if (n_ <= 0) return;
        int256 mean_ = sd_.mean;
        int256 newMean_ = mean_ + (x_ - mean_) / n_;
        sd_.sqSum = _clamp(int256(sd_.sqSum) + (x_ - newMean_) * (x_ - mean_));
        sd_.mean = _clamp(newMean_);
    }

    function remove(SD storage sd_, int256 x_, int256 n_) internal {
        if (n_ <= 0) {
            sd_.mean = 0;
            sd_.sqSum = 0;
            return;
        }
        int256 mean_ = sd_.mean;
        int256 newMean_ = mean_ - (x_ - mean_) / n_;
        sd_.sqSum = _clamp(int256(sd_.sqSum) - (x_ - newMean_) * (x_ - mean_));
        sd_.mean = _clamp(newMean_);
    }

    function _clamp(int256 v_) private pure returns (int64) {
        if (v_ > type(int64).max) return type(int64).max;
        if (v_ < type(int64).min) return type(int64).min;
        return int64(v_);
    }
}

// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {CheatCodes} from "./Vm.sol";

/// @notice Minimal test base: assertions that revert with both values on failure, and `bound` for fuzzing.
abstract contract Test is CheatCodes {
    bool public IS_TEST = true;

    function fail(string memory message_) internal pure {
        revert(message_);
    }

    function assertTrue(bool value_, string memory message_) internal pure {
        if (!value_) fail(string.concat("assertTrue failed: ", message_));
    }

    function assertTrue(bool value_) internal pure {
        assertTrue(value_, "");
    }

    function assertFalse(bool value_, string memory message_) internal pure {
        if (value_) fail(string.concat("assertFalse failed: ", message_));
    }

    function assertFalse(bool value_) internal pure {
        assertFalse(value_, "");
    }

    function assertEq(uint256 a_, uint256 b_, string memory message_) internal pure {
        if (a_ != b_) fail(string.concat(message_, ": ", vm.toString(a_), " != ", vm.toString(b_)));
    }

    function assertEq(uint256 a_, uint256 b_) internal pure {
        assertEq(a_, b_, "assertEq(uint)");
    }

    function assertEq(int256 a_, int256 b_, string memory message_) internal pure {
        if (a_ != b_) fail(string.concat(message_, ": ", vm.toString(a_), " != ", vm.toString(b_)));
    }

    function assertEq(int256 a_, int256 b_) internal pure {
        assertEq(a_, b_, "assertEq(int)");
    }

    function assertEq(address a_, address b_, string memory message_) internal pure {
        if (a_ != b_) fail(string.concat(message_, ": ", vm.toString(a_), " != ", vm.toString(b_)));
    }

    function assertEq(address a_, address b_) internal pure {
        assertEq(a_, b_, "assertEq(address)");
    }

    function assertEq(bytes32 a_, bytes32 b_, string memory message_) internal pure {
        if (a_ != b_) fail(string.concat(message_, ": ", vm.toString(a_), " != ", vm.toString(b_)));
    }

    function assertEq(bytes32 a_, bytes32 b_) internal pure {
        assertEq(a_, b_, "assertEq(bytes32)");
    }

    function assertEq(bool a_, bool b_, string memory message_) internal pure {
        if (a_ != b_) fail(string.concat(message_, ": ", vm.toString(a_), " != ", vm.toString(b_)));
    }

    function assertEq(bool a_, bool b_) internal pure {
        assertEq(a_, b_, "assertEq(bool)");
    }

    function assertEq(bytes memory a_, bytes memory b_, string memory message_) internal pure {
        if (keccak256(a_) != keccak256(b_)) fail(string.concat(message_, ": ", vm.toString(a_), " != ", vm.toString(b_)));
    }

    function assertEq(bytes memory a_, bytes memory b_) internal pure {
        assertEq(a_, b_, "assertEq(bytes)");
    }

    function assertEq(string memory a_, string memory b_, string memory message_) internal pure {
        if (keccak256(bytes(a_)) != keccak256(bytes(b_))) fail(string.concat(message_, ": ", a_, " != ", b_));
    }

    function assertEq(string memory a_, string memory b_) internal pure {
        assertEq(a_, b_, "assertEq(string)");
    }

    function assertGt(uint256 a_, uint256 b_, string memory message_) internal pure {
        if (a_ <= b_) fail(string.concat(message_, ": ", vm.toString(a_), " <= ", vm.toString(b_)));
    }

    function assertGe(uint256 a_, uint256 b_, string memory message_) internal pure {
        if (a_ < b_) fail(string.concat(message_, ": ", vm.toString(a_), " < ", vm.toString(b_)));
    }

    function assertLt(uint256 a_, uint256 b_, string memory message_) internal pure {
        if (a_ >= b_) fail(string.concat(message_, ": ", vm.toString(a_), " >= ", vm.toString(b_)));
    }

    function assertLe(uint256 a_, uint256 b_, string memory message_) internal pure {
        if (a_ > b_) fail(string.concat(message_, ": ", vm.toString(a_), " > ", vm.toString(b_)));
    }

    function assertApproxEqAbs(uint256 a_, uint256 b_, uint256 maxDelta_, string memory message_) internal pure {
        uint256 delta_ = a_ > b_ ? a_ - b_ : b_ - a_;
        if (delta_ > maxDelta_) {
            fail(string.concat(message_, ": ", vm.toString(a_), " !~ ", vm.toString(b_), " (delta ", vm.toString(delta_), ")"));
        }
    }

    /// @dev Maps any `x_` into [min_, max_] (inclusive) without discarding fuzz runs.
    function bound(uint256 x_, uint256 min_, uint256 max_) internal pure returns (uint256) {
        require(min_ <= max_, "bound: min > max");
        if (x_ >= min_ && x_ <= max_) return x_;
        return min_ + (x_ % (max_ - min_ + 1));
    }
}

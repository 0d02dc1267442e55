// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MarketplaceTestBase} from "./utils/MarketplaceTestBase.sol";
import {Test} from "./utils/Test.sol";
import {LibSD} from "../src/libs/LibSD.sol";
import {IStatsStorage} from "../src/interfaces/storage/IStatsStorage.sol";

/// @dev Exposes LibSD on a storage slot.
contract LibSDHarness {
    using LibSD for LibSD.SD;

    LibSD.SD public sd;

    function add(int256 x_, int256 n_) external {
        sd.add(x_, n_);
    }

    function remove(int256 x_, int256 n_) external {
        sd.remove(x_, n_);
    }
}

contract LibSDTest is Test {
    LibSDHarness internal h;

    function setUp() public {
        h = new LibSDHarness();
    }

    function _assertSD(int256 mean_, int256 sqSum_, string memory what_) internal view {
        (int64 m_, int64 s_) = h.sd();
        assertEq(int256(m_), mean_, string.concat(what_, " mean"));
        assertEq(int256(s_), sqSum_, string.concat(what_, " sqSum"));
    }

    function test_welfordAddThenRemove() public {
        h.add(10, 1);
        _assertSD(10, 0, "after 10");
        h.add(20, 2);
        _assertSD(15, 50, "after 20");
        h.add(30, 3);
        _assertSD(20, 200, "after 30"); // variance 200 / (3 - 1) = 100
        h.remove(30, 2);
        _assertSD(15, 50, "after removing 30");
        h.remove(20, 0);
        _assertSD(0, 0, "remove to an empty set resets");
    }

    function test_truncatesTowardZeroLikeTheReference() public {
        h.add(1, 1);
        h.add(2, 2); // mean 1 + (2 - 1) / 2 = 1 (truncated); sqSum 0 + (2 - 1) * (2 - 1) = 1
        _assertSD(1, 1, "truncated");
        h.add(-7, 3); // mean 1 + (-8) / 3 = 1 - 2 = -1; sqSum 1 + (-7 + 1) * (-7 - 1) = 49
        _assertSD(-1, 49, "negative truncates toward zero");
    }

    function test_addWithNonPositiveCountIsIgnored() public {
        h.add(5, 1);
        h.add(100, 0);
        h.add(100, -1);
        _assertSD(5, 0, "n <= 0 is a no-op");
    }

    /// D9: values beyond int64 are clamped instead of wrapping or reverting.
    function test_D9_clampsToInt64() public {
        int256 huge_ = int256(type(int64).max) * 4;
        h.add(huge_, 1);
        _assertSD(type(int64).max, 0, "mean clamps high");
        // mean: M + (-4M - M) / 2 = -1.5M, below int64: clamps low; sqSum: (-4M + 1.5M)(-4M - M) > 0: clamps high.
        h.add(-huge_, 2);
        _assertSD(type(int64).min, type(int64).max, "clamped both ways");
    }
}

/// D9 through the diamond: a receipt with the largest uint32 tps/ttft closes fine and the stats stay positive.
contract LibSDThroughCloseTest is MarketplaceTestBase {
    function test_D9_extremeReceiptValuesDoNotWrap() public {
        (bytes32 modelId_, bytes32 bidId_) = _defaultBid();
        bytes32 sessionId_ = _openSession(bidId_, SESSION_STAKE, false);
        vm.warp(block.timestamp + 60);

        bytes memory receipt_ = _receiptNow(sessionId_, type(uint32).max, type(uint32).max);
        bytes memory signature_ = _sign(PROVIDER_KEY, receipt_);
        vm.prank(user);
        sessionRouter.closeSession(receipt_, signature_);

        IStatsStorage.ProviderModelStats memory pm_ = statsStorage.getProviderModelStats(modelId_, provider);
        assertEq(int256(pm_.tpsScaled1000.mean), int256(uint256(type(uint32).max)), "tps not wrapped through int32");
        assertEq(int256(pm_.ttftMs.mean), int256(uint256(type(uint32).max)), "ttft not wrapped through int32");
        IStatsStorage.ModelStats memory ms_ = statsStorage.getModelStats(modelId_);
        assertEq(uint256(ms_.count), 1);
        assertEq(int256(ms_.tpsScaled1000.mean), int256(uint256(type(uint32).max)), "model tps mean");
    }
}

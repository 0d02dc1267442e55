// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MarketplaceTestBase} from "./utils/MarketplaceTestBase.sol";
import {ISessionStorage} from "../src/interfaces/storage/ISessionStorage.sol";

contract SmokeTest is MarketplaceTestBase {
    function test_openAndCloseWithProviderReceipt() public {
        (, bytes32 bidId_) = _defaultBid();
        bytes32 sessionId_ = _openSession(bidId_, SESSION_STAKE, false);
        ISessionStorage.Session memory s_ = sessionRouter.getSession(sessionId_);
        assertEq(s_.user, user);
        assertEq(uint256(s_.endsAt - s_.openedAt), 1578, "50 MOR buys 1578 s at 0.0001 MOR/s");
        assertEq(sessionRouter.getComputeBalance(uint128(START_TIME)), 32808001371506280000000, "compute balance at +10 days");
        vm.warp(block.timestamp + 100);
        _closeSession(sessionId_, PROVIDER_KEY);
        assertEq(sessionRouter.getSession(sessionId_).closeoutType, 0);
        assertEq(sessionRouter.getProvidersTotalClaimed(), 100 * PRICE, "provider paid 100 s at close");
    }
}
